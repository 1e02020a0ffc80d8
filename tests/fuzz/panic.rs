//! A handler that panics still answers its caller (found by `fuzz_wire`: `get_statistics`
//! panicked on huge budgets and every later caller waited out its timeout).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use guild_domain::{Principal, Service};
use guild_sdk::ErrorKind;
use guild_service::lost::Storage;
use guild_wire::api::{Recover, Recovered, Router, mission::op};
use guild_wire::store::Lost;
use guild_wire::{ErrorBody, ErrorCode};

/// mission-svc's endpoints: `get_statistics` panics, every other answers `{}`.
struct Panicking;

impl Router for Panicking {
    const SERVICE: guild_wire::subject::Service = guild_wire::subject::Service::Mission;

    async fn route(&self, op: &str, _: Principal, _: &[u8]) -> Result<Vec<u8>, ErrorBody> {
        if op == "get_statistics" {
            panic!("a defect in {op}");
        }
        Ok(b"{}".to_vec())
    }
}

/// Nothing is ever lost.
struct Intact;

impl Storage for Intact {
    fn lost(&self) -> Vec<Lost> {
        Vec::new()
    }
    fn watch(&self) -> Vec<tokio::sync::watch::Receiver<Vec<Lost>>> {
        Vec::new()
    }
    fn recover<'a>(
        &'a self,
        _: &'a Principal,
        _: Recover,
    ) -> Pin<Box<dyn Future<Output = Result<Recovered, ErrorBody>> + Send + 'a>> {
        Box::pin(async { Ok(Recovered { lost: Vec::new() }) })
    }
}

#[tokio::test]
async fn a_panicking_handler_answers_internal_and_the_service_keeps_serving() {
    let server = guild_testkit::NatsServer::start();
    let client = server
        .connect_as(&Principal::Service(Service::Mission))
        .await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = guild_service::CommonOptions::default();
    let served = tokio::spawn(async move {
        guild_service::serve(
            client,
            "panics on purpose",
            Arc::new(Panicking),
            Arc::new(Intact),
            &options,
            async {
                stopped.await.ok();
            },
        )
        .await
    });
    let operator = guild_sdk::connect(&server.options_as(&Principal::Operator))
        .await
        .unwrap()
        .with_timeout(Duration::from_secs(5));
    let ask = || operator.call::<op::GetStatistics>(&guild_wire::api::Empty {});
    // Twice: the first panic took nothing down with it.
    for _ in 0..2 {
        let e = guild_testkit::eventually_async(
            "the endpoint answers",
            Duration::from_secs(10),
            || async {
                match ask().await {
                    Err(e) if e.kind() == ErrorKind::NoResponders => None,
                    other => Some(other),
                }
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected(ErrorCode::Internal), "{e}");
        assert!(e.to_string().contains("get_statistics"), "{e}");
    }
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
}
