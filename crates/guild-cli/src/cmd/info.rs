//! `stats` and `services`.

use std::time::Duration;

use futures_util::StreamExt;
use guild_wire::subject::{self, Service};
use serde_json::{Value, json};

use crate::Ctx;

/// The three services' figures side by side; a service that does not answer is shown as
/// such rather than hiding the others, and the command then fails.
pub(crate) async fn stats(ctx: &Ctx) -> anyhow::Result<()> {
    let g = &ctx.guild;
    let (spawner, bus, mission) = (g.spawner(), g.bus(), g.missions());
    let (agents, messages, missions) = tokio::join!(
        spawner.get_stats(),
        bus.get_message_stats(),
        mission.get_statistics()
    );
    let mut down = Vec::new();
    let all = json!({
        "agents": figures(agents, &mut down),
        "messages": figures(messages, &mut down),
        "missions": figures(missions, &mut down),
    });
    ctx.out.emit(&all, |all| {
        let mut text = String::new();
        for (name, v) in all.as_object().into_iter().flatten() {
            text.push_str(name);
            text.push_str(":\n");
            text.push_str(&flatten("  ", v));
        }
        text
    });
    if !down.is_empty() {
        anyhow::bail!(
            "no figures from {}: is every service running?",
            down.join(", ")
        );
    }
    Ok(())
}

/// One service's figures as JSON; a service that did not answer (or whose answer does not
/// serialize) is shown by its error and named in `down`.
fn figures<T: serde::Serialize>(
    answer: Result<T, guild_sdk::Error>,
    down: &mut Vec<String>,
) -> Value {
    let failed = match answer {
        Ok(figures) => match serde_json::to_value(figures) {
            Ok(v) => return v,
            Err(e) => ("figures".to_owned(), format!("unreadable figures: {e}")),
        },
        Err(e) => (e.operation().to_owned(), e.to_string()),
    };
    down.push(failed.0);
    json!({ "error": failed.1 })
}

/// A JSON value as indented `key: value` lines.
fn flatten(indent: &str, v: &Value) -> String {
    let mut text = String::new();
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::Object(_) => {
                        text.push_str(&format!("{indent}{k}:\n"));
                        text.push_str(&flatten(&format!("{indent}  "), v));
                    }
                    _ => text.push_str(&format!("{indent}{k}: {v}\n")),
                }
            }
        }
        other => text.push_str(&format!("{indent}{other}\n")),
    }
    text
}

/// Every instance answering `$SRV.INFO`, Guild's and any other NATS micro service.
pub(crate) async fn services(ctx: &Ctx) -> anyhow::Result<()> {
    let client = ctx.guild.client();
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await?;
    client
        .publish_with_reply(subject::discovery("INFO", None), inbox, "".into())
        .await?;
    client.flush().await?;
    let mut found: Vec<Value> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, replies.next()).await {
        if m.status.is_some() {
            continue; // "no responders"
        }
        if let Ok(v) = serde_json::from_slice::<Value>(&m.payload) {
            found.push(v);
        }
    }
    found.sort_by_key(|v| {
        (
            v["name"].as_str().unwrap_or("").to_owned(),
            v["id"].as_str().unwrap_or("").to_owned(),
        )
    });
    ctx.out.emit(&found, |found| {
        if found.is_empty() {
            return format!(
                "no services answer at {}; start them with `guild dev` (or run {})",
                "this NATS server",
                Service::ALL.map(|s| s.micro_name()).join(", ")
            );
        }
        found
            .iter()
            .map(|v| {
                // Guild's services say their state in metadata; others say nothing.
                let state = match v["metadata"]["state"].as_str() {
                    Some("degraded") => format!(
                        "DEGRADED, lost {} (see `guild admin recover --help`)",
                        v["metadata"]["lost"].as_str().unwrap_or("?")
                    ),
                    Some(state) => state.to_owned(),
                    None => "-".to_owned(),
                };
                format!(
                    "{:<14} {:<8} id {}  {} endpoints  {}  {}",
                    v["name"].as_str().unwrap_or("?"),
                    v["version"].as_str().unwrap_or("?"),
                    v["id"].as_str().unwrap_or("?"),
                    v["endpoints"].as_array().map_or(0, Vec::len),
                    state,
                    v["description"].as_str().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// `guild admin recover`: each named service accepts its lost state, and says what it
/// accepted. Nothing happens without `--accept-loss`, which is the whole point of asking.
pub(crate) async fn recover(ctx: &Ctx, service: &str, accept_loss: bool) -> anyhow::Result<()> {
    if !accept_loss {
        anyhow::bail!(
            "recover accepts that missing state is gone for good; look at `guild services` \
             first, then run again with --accept-loss"
        );
    }
    let services: Vec<Service> = match service {
        "all" => Service::ALL.to_vec(),
        one => match Service::ALL.into_iter().find(|s| s.token() == one) {
            Some(s) => vec![s],
            None => anyhow::bail!("unknown service {one:?}: spawner, bus, mission or all"),
        },
    };
    let mut accepted = serde_json::Map::new();
    for s in services {
        let recovered = ctx.guild.recover(s).await?;
        accepted.insert(s.token().to_owned(), serde_json::to_value(&recovered.lost)?);
    }
    let accepted = Value::Object(accepted);
    ctx.out.emit(&accepted, |all| {
        all.as_object()
            .into_iter()
            .flatten()
            .map(|(name, lost)| match lost.as_array().map(Vec::len) {
                Some(0) | None => format!("{name}: nothing was lost"),
                Some(_) => format!("{name}: accepted the loss of {lost}; writes resume"),
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}
