//! Rate limit and injected faults, each kind forced with `fault_rate = 1.0`.

mod common;

use common::*;
use dcsync_emulator::FaultKind;

async fn assert_html(r: reqwest::Response, status: u16) {
    assert_eq!(r.status(), status);
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    assert!(ct.unwrap_or_default().starts_with("text/html"));
    assert!(r.text().await.unwrap().contains("<html"));
}

#[tokio::test]
async fn rate_limit_answers_429_html() {
    let e = start_with(|c| {
        c.rate_limit_rps = Some(3);
        c.seed = 1;
    })
    .await;
    let mut limited = 0;
    let mut with_retry_after = 0;
    for _ in 0..40 {
        let r = e.post_raw("folder/listing", &[]).await;
        if r.status() == 429 {
            limited += 1;
            if r.headers().get("retry-after").is_some() {
                assert_eq!(r.headers()["retry-after"], "1");
                with_retry_after += 1;
            }
            assert_html(r, 429).await;
        }
    }
    assert!(limited >= 30, "{limited}");
    assert!(
        with_retry_after > 0 && with_retry_after < limited,
        "{with_retry_after}/{limited}"
    );
}

#[tokio::test]
async fn bad_gateway_and_server_error() {
    let e = start_with(|c| {
        c.fault_rate = 1.0;
        c.fault_kinds = vec![FaultKind::BadGateway];
    })
    .await;
    let r = e.post_raw("authorize", &[("key1", K1), ("key2", K2)]).await;
    let body = {
        assert_eq!(r.status(), 502);
        r.text().await.unwrap()
    };
    assert!(body.contains("Bad Gateway"));

    let e = start_with(|c| {
        c.fault_rate = 1.0;
        c.seed = 3;
        c.fault_kinds = vec![FaultKind::ServerError];
    })
    .await;
    let mut empty = 0;
    let mut html = 0;
    for _ in 0..20 {
        let r = e.post_raw("folder/listing", &[]).await;
        assert_eq!(r.status(), 500);
        if r.text().await.unwrap().is_empty() {
            empty += 1;
        } else {
            html += 1;
        }
    }
    assert!(empty > 0 && html > 0);
}

#[tokio::test]
async fn dropped_connections() {
    let e = start_with(|c| {
        c.fault_rate = 1.0;
        c.fault_kinds = vec![FaultKind::Drop];
    })
    .await;
    for _ in 0..5 {
        let res = e
            .http
            .post(format!("{}folder/listing", e.api()))
            .form(&[("a", "b")])
            .send()
            .await;
        match res {
            Err(_) => {}
            Ok(r) => assert!(r.bytes().await.is_err(), "body must be incomplete"),
        }
    }
}

#[tokio::test]
async fn lost_answers_still_do_the_work() {
    let mut e = start().await;
    let a = e.authorize().await;
    let f = e.create_folder(&a, "before", None).await;
    e.restart_with(|c| {
        c.fault_rate = 1.0;
        c.seed = 11;
        c.fault_kinds = vec![FaultKind::LostAnswer];
    })
    .await;
    for i in 0..6 {
        let name = format!("made-{i}");
        let res = e
            .http
            .post(format!("{}folder/create", e.api()))
            .form(&[
                ("access_token", a.token.as_str()),
                ("account_id", a.account.as_str()),
                ("folder_name", name.as_str()),
                ("parent_id", f.as_str()),
            ])
            .send()
            .await;
        // The answer is lost: a 502 or a broken message.
        match res {
            Err(_) => {}
            Ok(r) if r.status() == 502 => {}
            Ok(r) => assert!(r.bytes().await.is_err()),
        }
    }
    // Non-mutating calls are not affected by this kind; the work was done.
    let l = e.listing(&a, Some(&f)).await;
    assert_eq!(names(&l, "folders", "folderName").len(), 6);
}

#[tokio::test]
async fn truncated_downloads() {
    let mut e = start().await;
    let a = e.authorize().await;
    let content = vec![7u8; 200_000];
    let id = e.upload_id(&a, "t.bin", &content, None).await;
    let v = e.call("file/download", &a, &[("file_id", &id)]).await;
    let url = v["data"]["download_url"].as_str().unwrap().to_string();
    let tail = url.strip_prefix(&e.base()).unwrap().to_string();
    e.restart_with(|c| {
        c.fault_rate = 1.0;
        c.fault_kinds = vec![FaultKind::Truncate];
    })
    .await;
    // The port changed on restart: same short url and token on the new base.
    let url = format!("{}{tail}", e.base());
    let r = e.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "200000");
    assert!(r.bytes().await.is_err(), "body must stop early");
    // API calls are untouched by this kind; stored content is intact.
    let info = e.file_info(&a, &id).await;
    assert_eq!(info["data"]["fileSize"], "200000");
}

#[tokio::test]
async fn faults_are_deterministic_per_seed() {
    async fn run(seed: u64) -> Vec<u16> {
        let e = start_with(|c| {
            c.fault_rate = 0.5;
            c.seed = seed;
            c.fault_kinds = vec![FaultKind::BadGateway];
        })
        .await;
        let mut out = Vec::new();
        for _ in 0..30 {
            out.push(e.post_raw("folder/listing", &[]).await.status().as_u16());
        }
        out
    }
    let a = run(42).await;
    assert_eq!(a, run(42).await);
    assert!(a.contains(&502) && a.contains(&200));
}
