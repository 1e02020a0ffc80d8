//! The `.creds` file every NATS client reads: a user JWT and the nkey seed that proves it.

use nats_jwt_rs::Claims;
use nats_jwt_rs::user::User;
use nkeys::KeyPair;

use crate::Error;

/// A user's credentials: the JWT the broker checks, and the seed that signs the server's
/// nonce at connect. The seed is the secret; nothing Guild logs, journals or publishes
/// holds it (`Debug` leaves it out).
#[derive(Clone)]
pub struct Credentials {
    /// The user JWT.
    pub jwt: String,
    /// The user's nkey seed (`SU...`).
    pub seed: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("name", &name_of(&self.jwt).ok())
            .field("seed", &"<secret>")
            .finish()
    }
}

const JWT_BEGIN: &str = "-----BEGIN NATS USER JWT-----";
const JWT_END: &str = "------END NATS USER JWT------";
const SEED_BEGIN: &str = "-----BEGIN USER NKEY SEED-----";
const SEED_END: &str = "------END USER NKEY SEED------";

impl Credentials {
    /// A new user key pair with `jwt` minted for its public key by `mint`.
    pub fn generate(mint: impl FnOnce(&str) -> Result<String, Error>) -> Result<Self, Error> {
        let user = KeyPair::new_user();
        let jwt = mint(&user.public_key())?;
        Ok(Self {
            jwt,
            seed: user.seed().map_err(Error::key)?,
        })
    }

    /// The `.creds` text, in the layout `nsc` writes and every NATS client reads.
    pub fn to_creds(&self) -> String {
        format!(
            "{JWT_BEGIN}\n{}\n{JWT_END}\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\
             NKEYs are sensitive and should be treated as secrets.\n\n\
             {SEED_BEGIN}\n{}\n{SEED_END}\n\n\
             *************************************************************\n",
            self.jwt, self.seed
        )
    }

    /// Reads `.creds` text.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let between = |begin: &str, end: &str| -> Result<String, Error> {
            let start = text
                .find(begin)
                .ok_or_else(|| Error::Format(format!("no {begin:?} line")))?
                + begin.len();
            let stop = text[start..]
                .find(end)
                .ok_or_else(|| Error::Format(format!("no {end:?} line")))?;
            Ok(text[start..start + stop].trim().to_owned())
        };
        let creds = Self {
            jwt: between(JWT_BEGIN, JWT_END)?,
            seed: between(SEED_BEGIN, SEED_END)?,
        };
        let key = KeyPair::from_seed(&creds.seed).map_err(Error::key)?;
        let claims = decode_user(&creds.jwt)?;
        if claims.sub != key.public_key() {
            return Err(Error::Format(
                "the seed does not belong to the JWT's user".into(),
            ));
        }
        Ok(creds)
    }

    /// The user's public key (`U...`).
    pub fn public_key(&self) -> Result<String, Error> {
        Ok(KeyPair::from_seed(&self.seed)
            .map_err(Error::key)?
            .public_key())
    }

    /// The name the credentials were minted for (`operator`, `observer`,
    /// `service:<name>` or an agent id).
    pub fn name(&self) -> Result<String, Error> {
        name_of(&self.jwt)
    }
}

/// Decodes a user JWT, checking its signature against its issuer (not whether the issuer
/// is trusted: the broker decides that).
pub fn decode_user(jwt: &str) -> Result<Claims<User>, Error> {
    Claims::<User>::decode(jwt).map_err(|e| Error::Format(format!("user JWT: {e}")))
}

/// The name a user JWT was minted for.
pub fn name_of(jwt: &str) -> Result<String, Error> {
    decode_user(jwt)?
        .name
        .ok_or_else(|| Error::Format("the user JWT has no name".into()))
}
