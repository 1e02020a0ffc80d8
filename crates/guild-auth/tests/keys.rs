//! Keys made once, credentials issued from them, and the limits the broker imposes.

#![allow(clippy::unwrap_used)]

use guild_auth::claims::AgentLimits;
use guild_auth::{Credentials, Custodian, Keys, Layout};
use guild_wire::domain::{AgentId, Principal, Service};

#[test]
fn every_credential_fits_nats_servers_connect_line() {
    // nats-server refuses a CONNECT line over 4 KB (max_control_line), and the JWT is in
    // it with the signature, the name and the client's options.
    let issued = Keys::generate().issue(AgentLimits::default()).unwrap();
    for (name, creds) in &issued.credentials {
        assert!(creds.jwt.len() < 3_400, "{name}: {} bytes", creds.jwt.len());
    }
}

#[test]
fn init_makes_everything_once_and_credentials_name_their_identity() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::under(dir.path());
    assert!(guild_auth::init(&layout, &dir.path().join("jwt"), AgentLimits::default()).unwrap());
    let first = std::fs::read_to_string(layout.server_config()).unwrap();
    // A second start touches nothing: a new account JWT would drop the revocations.
    assert!(!guild_auth::init(&layout, &dir.path().join("jwt"), AgentLimits::default()).unwrap());
    assert_eq!(
        std::fs::read_to_string(layout.server_config()).unwrap(),
        first
    );
    for principal in [Principal::Operator, Principal::Observer] {
        let creds = std::fs::read_to_string(layout.creds_of(&principal)).unwrap();
        assert_eq!(
            Credentials::parse(&creds).unwrap().name().unwrap(),
            principal.token()
        );
    }
    for s in Service::ALL {
        let creds = std::fs::read_to_string(layout.service_creds(s)).unwrap();
        assert_eq!(
            Credentials::parse(&creds).unwrap().name().unwrap(),
            Principal::Service(s).token()
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for secret in [layout.custodian(), layout.keys.join("operator.nk")] {
            let mode = std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", secret.display());
        }
    }
    // The audit key history lists each service's key.
    let history: guild_auth::AuditKeys =
        serde_json::from_str(&std::fs::read_to_string(layout.audit_keys()).unwrap()).unwrap();
    assert_eq!(history.keys.len(), 3);
}

#[test]
fn the_custodian_mints_agents_bound_to_their_id_and_revokes_by_key() {
    let issued = Keys::generate().issue(AgentLimits::default()).unwrap();
    let custodian = Custodian::new(issued.custodian.clone(), AgentLimits::default()).unwrap();
    let id = AgentId::new("dev-1").unwrap();
    let creds = custodian.generate_agent(&id).unwrap();
    assert_eq!(creds.name().unwrap(), "dev-1");
    // The seed and the JWT agree; the text round-trips.
    let again = Credentials::parse(&creds.to_creds()).unwrap();
    assert_eq!(again.public_key().unwrap(), creds.public_key().unwrap());
    // Not a user key: refused.
    assert!(
        custodian
            .mint_agent(&id, &issued.custodian.account.account)
            .is_err()
    );
    // Revocations travel in the account JWT.
    let revoked = [(creds.public_key().unwrap(), 42)].into();
    let jwt = custodian.account_jwt(&revoked).unwrap();
    assert_eq!(Custodian::revocations_in(&jwt).unwrap(), revoked);
    // Debug never shows the seed.
    assert!(!format!("{creds:?}").contains(&creds.seed));
}
