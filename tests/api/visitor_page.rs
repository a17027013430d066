//! The visitor page, its fragments and the health check.

use std::collections::HashSet;

use crate::helpers::{browser, number, page_text, spawn_app, spawn_app_in, visitor_cookie};

#[tokio::test]
async fn a_first_visit_sets_a_signed_cookie_and_shows_one() {
    let app = spawn_app().await;

    let response = app.get("/").await;

    assert_eq!(response.status(), 200);
    let cookie = visitor_cookie(&response).expect("the first visit sets the visitor cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(cookie.contains("Max-Age="), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP must not mark the cookie Secure"
    );
    let html = response.text().await.unwrap();
    assert_eq!(number(&html, "visitor-hits"), 1);
    assert_eq!(number(&html, "total-hits"), 1);
    assert_eq!(number(&html, "total-visitors"), 1);
    assert_eq!(number(&html, "active-visitors"), 1);
}

#[tokio::test]
async fn a_second_visit_with_the_cookie_shows_two() {
    let app = spawn_app().await;

    app.get("/").await;
    let html = app.get("/").await.text().await.unwrap();

    assert_eq!(number(&html, "visitor-hits"), 2);
    assert_eq!(number(&html, "total-visitors"), 1);
}

#[tokio::test]
async fn the_counter_fragment_counts_nothing() {
    let app = spawn_app().await;
    app.get("/").await;

    let first = app.get("/counter").await.text().await.unwrap();
    let second = app.get("/counter").await.text().await.unwrap();

    assert_eq!(number(&first, "visitor-hits"), 1);
    assert_eq!(number(&second, "visitor-hits"), 1);
    assert_eq!(number(&second, "total-hits"), 1);
    assert!(!second.contains("<html"), "a fragment, not a page");
}

#[tokio::test]
async fn posting_a_hit_counts_it_and_answers_with_the_fragment() {
    let app = spawn_app().await;
    app.get("/").await;

    let response = app.post("/hit").await;

    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(
        html.trim_start().starts_with("<section id=\"counter\""),
        "{html}"
    );
    assert_eq!(number(&html, "visitor-hits"), 2);
    assert_eq!(number(&html, "total-hits"), 2);
}

#[tokio::test]
async fn a_poll_that_already_shows_the_current_numbers_gets_no_content() {
    let app = spawn_app().await;
    let page = app.get("/").await.text().await.unwrap();
    let poll_url = page
        .split("hx-get=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the counter polls a URL")
        .to_owned();

    let unchanged = app.get(&poll_url).await;
    app.post("/hit").await;
    let changed = app.get(&poll_url).await;
    let plain = app.get("/counter").await;

    assert_eq!(unchanged.status(), 204);
    assert_eq!(changed.status(), 200);
    assert_eq!(number(&changed.text().await.unwrap(), "visitor-hits"), 2);
    assert_eq!(
        plain.status(),
        200,
        "a plain GET /counter always gets the fragment"
    );
}

#[tokio::test]
async fn a_tampered_cookie_makes_a_new_visitor() {
    let app = spawn_app().await;
    let first = app.get("/").await;
    let cookie = visitor_cookie(&first).unwrap();
    let value = cookie.split(';').next().unwrap();
    let mut tampered = value.to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    let stranger = reqwest::Client::new();

    let response = stranger
        .get(app.url("/"))
        .header("cookie", tampered)
        .send()
        .await
        .unwrap();

    assert!(
        visitor_cookie(&response).is_some(),
        "a new visitor gets a new cookie"
    );
    let html = response.text().await.unwrap();
    assert_eq!(number(&html, "visitor-hits"), 1);
    assert_eq!(number(&html, "total-visitors"), 2);
}

#[tokio::test]
async fn garbage_cookies_make_a_new_visitor_and_never_an_error() {
    let app = spawn_app().await;
    let huge = format!("hc_visitor={}", "x".repeat(6000));
    let stranger = reqwest::Client::new();

    for cookie in [
        "hc_visitor=",
        "hc_visitor=%%%",
        "hc_visitor=\"quoted\"",
        huge.as_str(),
        "a=b; hc_visitor=1; hc_visitor=2",
    ] {
        let response = stranger
            .get(app.url("/"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 200, "cookie {cookie:.40}");
        assert_eq!(number(&response.text().await.unwrap(), "visitor-hits"), 1);
    }
}

#[tokio::test]
async fn counts_and_cookies_survive_a_restart_on_the_same_file() {
    let app = spawn_app().await;
    let client = app.client.clone();
    app.get("/").await;
    app.get("/").await;

    let dir = app.stop().await;
    let restarted = spawn_app_in(dir, &[]).await;
    let html = page_text(&client, &restarted.url("/")).await;

    assert_eq!(
        number(&html, "visitor-hits"),
        3,
        "the signing key and the count survived"
    );
    assert_eq!(number(&html, "total-visitors"), 1);
}

#[tokio::test]
async fn the_status_is_healthy_with_a_working_store() {
    let app = spawn_app().await;

    let response = app.get("/status").await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), r#"{"status":"healthy"}"#);
}

#[tokio::test]
async fn an_unknown_path_gets_a_short_page_that_does_not_echo_it() {
    let app = spawn_app().await;

    let response = app.get("/%3Cscript%3Ealert(1)%3C/script%3E").await;

    assert_eq!(response.status(), 404);
    let html = response.text().await.unwrap();
    assert!(html.contains("Not found"));
    assert!(!html.contains("alert"), "{html}");
}

#[tokio::test]
async fn static_assets_are_served_from_the_binary_with_their_type() {
    let app = spawn_app().await;

    let htmx = app.get("/static/htmx-2.0.11.min.js").await;
    let css = app.get("/static/app.css").await;
    let missing = app.get("/static/nope.js").await;

    assert_eq!(
        htmx.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(
        htmx.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(missing.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_hits_from_one_visitor_are_counted_exactly() {
    let app = spawn_app().await;
    app.get("/").await;
    let tabs = 200;

    let requests = (0..tabs).map(|_| {
        let client = app.client.clone();
        let url = app.url("/hit");
        tokio::spawn(async move { client.post(url).send().await })
    });
    let mut shown = HashSet::new();
    let mut acknowledged = 0;
    for request in requests {
        let response = request.await.unwrap().expect("answered");
        if response.status().is_success() {
            acknowledged += 1;
            shown.insert(number(&response.text().await.unwrap(), "visitor-hits"));
        }
    }
    let html = app.get("/counter").await.text().await.unwrap();

    assert_eq!(number(&html, "visitor-hits"), 1 + acknowledged);
    assert_eq!(
        shown.len() as i64,
        acknowledged,
        "every hit saw its own count"
    );
    assert_eq!(acknowledged, tabs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn visitors_are_told_apart_and_the_room_totals_add_up() {
    let app = spawn_app().await;
    let phones: Vec<_> = (0..5).map(|_| browser()).collect();

    for (i, phone) in phones.iter().enumerate() {
        for _ in 0..=i {
            phone.get(app.url("/")).send().await.unwrap();
        }
    }
    let last = page_text(&phones[4], &app.url("/counter")).await;

    assert_eq!(number(&last, "visitor-hits"), 5);
    assert_eq!(number(&last, "total-hits"), 15);
    assert_eq!(number(&last, "total-visitors"), 5);
    assert_eq!(number(&last, "active-visitors"), 5);
}
