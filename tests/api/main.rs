//! Integration tests over real HTTP: each test starts the real server on port 0 with a
//! fresh SQLite file. One test binary, so the app links once.

mod audience;
mod helpers;
mod instances;
mod robustness;
mod tls;
mod visitor_page;
