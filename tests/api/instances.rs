//! Two instances on one SQLite file, as behind a load balancer: nothing a visitor sees
//! may depend on which instance answers.

use std::time::{Duration, Instant};

use crate::helpers::{TestApp, TestDir, browser, number, page_text, spawn_app_in};

/// The default `POLL_SECONDS`.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Two instances of the app on one database file.
async fn two_instances() -> (TestApp, TestApp) {
    let dir = TestDir::new();
    let first = spawn_app_in(dir.clone(), &[]).await;
    let second = spawn_app_in(dir, &[]).await;
    (first, second)
}

/// The number `url` shows in `#id`, read again until it reaches `expected` or one poll
/// interval has passed: hits taken by another instance may take that long to show.
async fn shown_within_a_poll(client: &reqwest::Client, url: &str, id: &str, expected: i64) -> i64 {
    let started = Instant::now();
    loop {
        let html = page_text(client, url).await;
        let shown = number(&html, id);
        if shown >= expected || started.elapsed() > POLL_INTERVAL {
            return shown;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cookie_from_one_instance_is_accepted_by_the_other() {
    let (first, second) = two_instances().await;
    let phone = browser();

    phone.get(first.url("/")).send().await.unwrap();
    let html = page_text(&phone, &second.url("/")).await;

    assert_eq!(
        number(&html, "visitor-hits"),
        2,
        "the second instance knew the visitor"
    );
    assert_eq!(number(&html, "total-visitors"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hits_sent_to_both_instances_are_counted_exactly() {
    let (first, second) = two_instances().await;
    let phones: Vec<_> = (0..4).map(|_| browser()).collect();
    for phone in &phones {
        phone.get(first.url("/")).send().await.unwrap();
    }

    let mut sent = Vec::new();
    for round in 0..25 {
        for (i, phone) in phones.iter().enumerate() {
            let target = if (round + i) % 2 == 0 {
                &first
            } else {
                &second
            };
            let request = phone.post(target.url("/hit")).send();
            sent.push(tokio::spawn(request));
        }
    }
    let mut acknowledged = 0;
    for request in sent {
        if request.await.unwrap().unwrap().status().is_success() {
            acknowledged += 1;
        }
    }
    let html = page_text(&phones[0], &second.url("/counter")).await;
    let counter = second.url("/counter");
    let total = shown_within_a_poll(&phones[0], &counter, "total-hits", 104).await;
    let mine = shown_within_a_poll(&phones[0], &counter, "visitor-hits", 26).await;

    assert_eq!(acknowledged, 100);
    assert_eq!(
        total,
        4 + acknowledged,
        "exact once a poll interval has passed"
    );
    assert_eq!(mine, 26);
    assert_eq!(number(&html, "total-visitors"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poll_on_one_instance_shows_a_hit_taken_by_the_other_within_one_poll_interval() {
    let (first, second) = two_instances().await;
    let phone = browser();
    phone.get(first.url("/")).send().await.unwrap();
    let projector = browser();
    let live = second.url("/present/live");
    let before = shown_within_a_poll(&projector, &live, "total-hits", 0).await;

    let counter = second.url("/counter");
    let seen_before = shown_within_a_poll(&phone, &counter, "visitor-hits", 1).await;

    phone.post(first.url("/hit")).send().await.unwrap();
    let mine = shown_within_a_poll(&phone, &counter, "visitor-hits", 2).await;
    let total = shown_within_a_poll(&projector, &live, "total-hits", 2).await;

    assert_eq!((before, seen_before), (1, 1));
    assert_eq!(
        mine, 2,
        "the visitor's count caught up within one poll interval"
    );
    assert_eq!(
        total, 2,
        "the room's total caught up within one poll interval"
    );
}
