//! The benchmark's baseline: a bare actix-web server that answers every
//! `POST /v1/collect` with 204 and does nothing else (no parsing, no Kafka).
//! Same actix-web build, worker count and client timeout as ingest, so the
//! gap to ingest is the cost of validating and making events durable.
//!
//!   cargo run --release -p ringpath-ingest --example bare204 -- 127.0.0.1:18099

use actix_web::{web, App, HttpResponse, HttpServer};

async fn collect(_body: web::Bytes) -> HttpResponse {
    HttpResponse::NoContent().finish()
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let listen = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18099".into());
    let server = HttpServer::new(|| App::new().route("/v1/collect", web::post().to(collect)))
        .client_request_timeout(std::time::Duration::from_secs(5))
        .bind(&listen)?;
    println!("bare204 listening on http://{listen}");
    server.run().await
}
