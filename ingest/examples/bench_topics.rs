//! Creates or deletes the benchmark's Kafka topics (infra/bench/ingest.sh), so
//! a run neither relies on auto-creation nor leaves data on the shared broker.
//!
//!   bench_topics create 127.0.0.1:19092 4 ringpath.events.bench1 …
//!   bench_topics delete 127.0.0.1:19092 ringpath.events.bench1 …

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, brokers) = match (args.first(), args.get(1)) {
        (Some(c), Some(b)) => (c.as_str(), b.as_str()),
        _ => anyhow::bail!("usage: bench_topics create BROKERS PARTITIONS TOPIC… | delete BROKERS TOPIC…"),
    };
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", brokers).create()?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))).request_timeout(Some(Duration::from_secs(20)));
    match cmd {
        "create" => {
            let partitions: i32 = args.get(2).ok_or_else(|| anyhow::anyhow!("PARTITIONS missing"))?.parse()?;
            let topics: Vec<NewTopic> = args[3..].iter().map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1))).collect();
            for r in admin.create_topics(&topics, &opts).await? {
                if let Err((name, code)) = r {
                    anyhow::bail!("creating {name}: {code}");
                }
            }
        }
        "delete" => {
            let names: Vec<&str> = args[2..].iter().map(String::as_str).collect();
            for r in admin.delete_topics(&names, &opts).await? {
                if let Err((name, code)) = r {
                    eprintln!("deleting {name}: {code}");
                }
            }
        }
        other => anyhow::bail!("unknown command {other}"),
    }
    Ok(())
}
