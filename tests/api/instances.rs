//! Two instances on one SQLite file, as behind a load balancer: nothing a visitor sees
//! may depend on which instance answers.

use crate::helpers::{TestDir, browser, number, spawn_app_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cookie_from_one_instance_is_accepted_by_the_other() {
    let dir = TestDir::new();
    let first = spawn_app_in(dir.clone(), &[]).await;
    let second = spawn_app_in(dir, &[]).await;
    let phone = browser();

    phone.get(first.url("/")).send().await.unwrap();
    let html = phone
        .get(second.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert_eq!(
        number(&html, "visitor-hits"),
        2,
        "the second instance knew the visitor"
    );
    assert_eq!(number(&html, "total-visitors"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hits_sent_to_both_instances_are_counted_exactly() {
    let dir = TestDir::new();
    let first = spawn_app_in(dir.clone(), &[]).await;
    let second = spawn_app_in(dir, &[]).await;
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
    let html = phones[0]
        .get(second.url("/counter"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert_eq!(acknowledged, 100);
    assert_eq!(number(&html, "total-hits"), 4 + acknowledged);
    assert_eq!(number(&html, "visitor-hits"), 26);
    assert_eq!(number(&html, "total-visitors"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poll_on_one_instance_shows_a_hit_taken_by_the_other_at_once() {
    let dir = TestDir::new();
    let first = spawn_app_in(dir.clone(), &[]).await;
    let second = spawn_app_in(dir, &[]).await;
    let phone = browser();
    phone.get(first.url("/")).send().await.unwrap();
    let before = phone
        .get(second.url("/counter"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    phone.post(first.url("/hit")).send().await.unwrap();
    let after = phone
        .get(second.url("/counter"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let projector = browser()
        .get(second.url("/present/live"))
        .send()
        .await
        .unwrap();

    assert_eq!(number(&before, "visitor-hits"), 1);
    assert_eq!(
        number(&after, "visitor-hits"),
        2,
        "no instance serves stale numbers"
    );
    assert_eq!(number(&projector.text().await.unwrap(), "total-hits"), 2);
}
