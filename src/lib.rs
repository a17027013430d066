//! hit-counter: a live page-view counter for talks and demos.
//!
//! The binary in `main.rs` only parses settings and calls [`startup::Application`];
//! everything else lives here so that tests build the very app that production runs.

pub mod chart;
pub mod config;
pub mod healthcheck;
pub mod join_url;
pub mod listener;
pub mod qr;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod views;
pub mod visitor;
pub mod web;
