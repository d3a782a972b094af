//! End-to-end tests: a real server per test on 127.0.0.1, real SDK clients, and every
//! test run on both SQLite and PostgreSQL (`backend_tests!`).

mod account_events;
mod accounts;
mod audit;
mod auth;
mod channel_settings;
mod checks;
mod compression;
mod config_semantics;
mod default_answer;
mod default_cache;
mod defaults;
mod envelopes;
mod grpc_web;
mod idempotency;
mod instagram;
mod integrations;
mod isolation;
mod limits;
mod messenger;
mod outbound;
mod overload;
mod providers;
mod roles;
mod routing;
mod secrets;
mod server;
mod tls;
mod token_lifecycle;
mod tokens;
mod unreadable;
mod validation;
mod watch;
mod webhooks;
mod whatsapp;
