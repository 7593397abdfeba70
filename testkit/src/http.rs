//! The HTTP client of the tests: blocking, with a timeout, so that a hung
//! server fails a test instead of holding it.

use std::time::Duration;

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client")
}
