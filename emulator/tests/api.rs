//! Endpoint behaviour, error messages and real-server quirks.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

#[tokio::test]
async fn authorize_errors_and_success() {
    let e = start().await;
    let v = e
        .post("authorize", &[("key1", "short"), ("key2", K2)])
        .await;
    assert_error(
        &v,
        "Please provide key1. It must be 64 characters in length.",
    );
    let v = e.post("authorize", &[("key1", K1)]).await;
    assert_error(
        &v,
        "Please provide key2. It must be 64 characters in length.",
    );
    let v = e.post("authorize", &[("key1", K2), ("key2", K1)]).await;
    assert_error(
        &v,
        "Could not authenticate user. The key pair may be invalid or your account may be locked from too many failed logins.",
    );
    // Query string is ignored on a POST.
    let r = e
        .http
        .post(format!("{}authorize?key1={K1}&key2={K2}", e.api()))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_error(
        &v,
        "Please provide key1. It must be 64 characters in length.",
    );
    // JSON bodies are ignored.
    let r = e
        .http
        .post(format!("{}authorize", e.api()))
        .json(&serde_json::json!({"key1": K1, "key2": K2}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_error(
        &v,
        "Please provide key1. It must be 64 characters in length.",
    );
    // Multipart works, values are trimmed.
    let form = reqwest::multipart::Form::new()
        .text("key1", format!("  {K1}\n"))
        .text("key2", K2);
    let v: Value = e
        .http
        .post(format!("{}authorize", e.api()))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["_status"], "success", "{v}");
    let token = v["data"]["access_token"].as_str().unwrap();
    assert_eq!(token.len(), 128);
    assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(v["data"]["account_id"], "158642");
    let dt = v["_datetime"].as_str().unwrap();
    assert_eq!(dt.len(), 19, "{dt}");
}

#[tokio::test]
async fn password_auth_mode() {
    let e = start_with(|c| {
        c.auth = dcsync_emulator::AuthMode::Password;
        c.password = "secret".into();
    })
    .await;
    let v = e
        .post("authorize", &[("username", "admin"), ("password", "wrong")])
        .await;
    assert_error(
        &v,
        "Could not authenticate user. The username and password may be invalid or your account may be locked from too many failed logins.",
    );
    let v = e
        .post(
            "authorize",
            &[("username", "admin"), ("password", "secret")],
        )
        .await;
    assert_eq!(v["_status"], "success");
}

#[tokio::test]
async fn envelopes_404_405_and_param_order() {
    let e = start().await;
    let r = e.post_raw("file/nonsense", &[]).await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["_status"], "error");
    assert!(
        v["0"]
            .as_str()
            .unwrap()
            .starts_with("No method found within endpoint")
    );
    let r = e
        .http
        .get(format!("{}file/info", e.api()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);

    let v = e.post("file/info", &[]).await;
    assert_error(&v, "Please provide the access_token param.");
    let v = e.post("file/info", &[("access_token", "x")]).await;
    assert_error(&v, "Please provide the account_id param.");
    let v = e
        .post("file/info", &[("access_token", "x"), ("account_id", "1")])
        .await;
    assert_error(&v, "Please provide the file_id param.");
    let v = e
        .post(
            "file/info",
            &[("access_token", "x"), ("account_id", "1"), ("file_id", "1")],
        )
        .await;
    assert_error(
        &v,
        "Could not validate access_token and account_id, please reauthenticate or try again.",
    );
    for ep in ["account/info", "account/package"] {
        let v = e
            .post(ep, &[("access_token", "x"), ("account_id", "1")])
            .await;
        assert_error(
            &v,
            "Could not validate access_token, please reauthenticate or try again.",
        );
    }
    let a = e.authorize().await;
    // A token is bound to its account id.
    let bad = Auth {
        token: a.token.clone(),
        account: "1".into(),
    };
    let v = e.call("folder/listing", &bad, &[]).await;
    assert_error(
        &v,
        "Could not validate access_token and account_id, please reauthenticate or try again.",
    );
    // Params named per endpoint.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        ("file/download", &[], "Please provide the file_id param."),
        ("file/edit", &[], "Please provide the file_id param."),
        ("file/delete", &[], "Please provide the file_id param."),
        (
            "file/move",
            &[("file_id", "1")],
            "Please provide the new_parent_folder_id param.",
        ),
        (
            "file/move",
            &[("file_id", "1"), ("new_parent_folder_id", "")],
            "Please provide the new_parent_folder_id param.",
        ),
        (
            "file/copy",
            &[("file_id", "1")],
            "Please provide the copy_to_folder_id param.",
        ),
        (
            "file/url_upload_add",
            &[],
            "Please provide the file_url_base64 param.",
        ),
        (
            "file/url_upload_add",
            &[("file_url_base64", "%%%")],
            "Could not parse the file_url_base64 parameter. Ensure it's base64 encoded.",
        ),
        (
            "file/url_upload_status",
            &[],
            "Please provide the scheduled_item_id param.",
        ),
        (
            "file/url_upload_status",
            &[("scheduled_item_id", "999")],
            "Could not find scheduled item.",
        ),
        (
            "folder/create",
            &[("folder_name", " <b></b> ")],
            "Please provide the folder_name param.",
        ),
        ("folder/info", &[], "Please provide the folder_id param."),
        (
            "folder/info",
            &[("folder_id", "999")],
            "Could not find folder based on folder_id.",
        ),
        (
            "folder/listing",
            &[("parent_folder_id", "999")],
            "Could not find folder based on folder_id.",
        ),
        (
            "folder/edit",
            &[("folder_id", "999")],
            "Could not find folder based on folder_id.",
        ),
        (
            "folder/delete",
            &[("folder_id", "999")],
            "Could not find folder based on folder_id.",
        ),
        (
            "folder/move",
            &[("folder_id", "999"), ("new_parent_folder_id", "null")],
            "Could not find folder based on folder_id.",
        ),
        (
            "file/info",
            &[("file_id", "999")],
            "Could not find file based on file_id.",
        ),
        (
            "file/download",
            &[("file_id", "999")],
            "Could not find file based on file_id.",
        ),
    ];
    for (ep, extra, message) in cases {
        let v = e.call(ep, &a, extra).await;
        assert_error(&v, message);
    }
    let v = e.call("file/upload", &a, &[]).await;
    assert_error(&v, "Did not receive uploaded file.");
}

#[tokio::test]
async fn account_endpoints() {
    let e = start_with(|c| {
        c.max_upload_size = 12345;
        c.concurrent_uploads = 7;
    })
    .await;
    let a = e.authorize().await;
    let v = e.call("account/info", &a, &[]).await;
    assert_eq!(v["_status"], "success");
    assert_eq!(v["data"]["id"], "158642");
    assert_eq!(v["data"]["username"], "admin");
    assert_eq!(v["data"]["level_id"], "20");
    let v = e.call("account/package", &a, &[]).await;
    assert_eq!(v["data"]["max_upload_size"], "12345");
    assert_eq!(v["data"]["can_upload"], "1");
    assert_eq!(v["data"]["max_storage_bytes"], "0");
    assert_eq!(v["data"]["concurrent_uploads"], "7");
}

#[tokio::test]
async fn upload_answer_naming_and_refusals() {
    let e = start().await;
    let a = e.authorize().await;
    let content = b"hello world";
    let v = e.upload(&a, "a.txt", content, None).await;
    assert_eq!(v["_status"], "success", "{v}");
    assert_eq!(v["response"], "File uploaded");
    let d = &v["data"][0];
    for k in [
        "name",
        "size",
        "type",
        "error",
        "url",
        "delete_url",
        "info_url",
        "delete_type",
        "delete_hash",
        "hash",
        "stats_url",
        "short_url",
        "file_id",
        "unique_hash",
        "url_html",
        "url_bbcode",
    ] {
        assert!(d.get(k).is_some(), "missing {k}: {d}");
    }
    assert_eq!(d["name"], "a.txt");
    assert_eq!(d["size"], "11");
    assert!(d["error"].is_null());
    assert_eq!(d["hash"], md5_hex(content));
    assert_eq!(d["unique_hash"].as_str().unwrap().len(), 64);
    assert!(d["file_id"].is_string());

    // Same name in the same folder is renamed; other folders are independent.
    assert_eq!(
        e.upload(&a, "a.txt", b"2", None).await["data"][0]["name"],
        "a (2).txt"
    );
    assert_eq!(
        e.upload(&a, "a.txt", b"3", None).await["data"][0]["name"],
        "a (3).txt"
    );
    assert_eq!(
        e.upload(&a, "README", b"x", None).await["data"][0]["name"],
        "README"
    );
    assert_eq!(
        e.upload(&a, "README", b"x", None).await["data"][0]["name"],
        "README (2)"
    );
    // Quotes, CR and LF are stripped from the name.
    assert_eq!(
        e.upload(&a, "it's \"q\".txt", b"x", None).await["data"][0]["name"],
        "its q.txt"
    );
    // Zero bytes refused.
    assert_error(
        &e.upload(&a, "empty.txt", b"", None).await,
        "Filesize received was zero.",
    );
    // Unknown folder → root.
    let id = e.upload_id(&a, "stray.txt", b"x", Some("987654")).await;
    assert!(e.file_info(&a, &id).await["data"]["folderId"].is_null());
    // Into a real folder.
    let f = e.create_folder(&a, "F", None).await;
    let id = e.upload_id(&a, "a.txt", b"x", Some(&f)).await;
    let info = e.file_info(&a, &id).await;
    assert_eq!(info["data"]["folderId"], f.as_str());
    assert_eq!(info["data"]["filename"], "a.txt");
}

#[tokio::test]
async fn upload_limits() {
    let e = start_with(|c| c.max_upload_size = 10).await;
    let a = e.authorize().await;
    let v = e.upload(&a, "big.bin", &[1u8; 11], None).await;
    assert_eq!(v["status"], "error", "{v}");
    assert!(v["response"].as_str().unwrap().contains("too large"));

    let e = start_with(|c| c.can_upload = false).await;
    let a = e.authorize().await;
    assert_eq!(e.upload(&a, "x", b"x", None).await["status"], "error");

    let e = start_with(|c| c.max_storage_bytes = 10).await;
    let a = e.authorize().await;
    e.upload_id(&a, "a", &[0u8; 6], None).await;
    assert_eq!(e.upload(&a, "b", &[0u8; 6], None).await["status"], "error");
}

#[tokio::test]
async fn file_objects_edit_move_copy_delete() {
    let e = start().await;
    let a = e.authorize().await;
    let f = e.create_folder(&a, "Dest", None).await;
    let x = e.upload_id(&a, "x.txt", b"xx", None).await;
    let y = e.upload_id(&a, "y.txt", b"yy", None).await;

    let info = e.file_info(&a, &x).await;
    let d = &info["data"];
    for k in [
        "id",
        "filename",
        "shortUrl",
        "fileType",
        "extension",
        "fileSize",
        "uploadedIP",
        "uploadedDate",
        "file_status",
        "downloads",
        "lastAccessed",
        "folderId",
        "keywords",
        "isPublic",
        "uploadSource",
        "url_file",
        "url_file_info",
        "url_file_stats",
        "url_file_delete",
    ] {
        assert!(d.get(k).is_some(), "missing {k}: {d}");
    }
    assert!(d.get("status").is_none());
    assert_eq!(d["file_status"], "active");
    assert_eq!(d["fileSize"], "2");
    assert_eq!(d["extension"], "txt");

    // Edit to a name another file has: allowed; extension recomputed; quotes kept.
    let v = e
        .call("file/edit", &a, &[("file_id", &y), ("filename", "x.txt")])
        .await;
    assert_eq!(v["response"], "File successfully updated.");
    assert_eq!(v["data"]["filename"], "x.txt");
    let v = e
        .call(
            "file/edit",
            &a,
            &[("file_id", &y), ("filename", " it's <i>a</i>.MD ")],
        )
        .await;
    assert_eq!(v["data"]["filename"], "it's a.MD");
    assert_eq!(v["data"]["extension"], "md");
    e.call("file/edit", &a, &[("file_id", &y), ("filename", "x.txt")])
        .await;
    let root = e.listing(&a, None).await;
    assert_eq!(names(&root, "files", "filename"), vec!["x.txt", "x.txt"]);
    let lf = &root["files"][0];
    assert_eq!(lf["status"], "active");
    assert!(lf.get("file_status").is_none());
    assert!(lf.get("uploadedDate").is_none());

    // Move both into Dest (duplicates allowed), then one back with literal null.
    for id in [&x, &y] {
        let v = e
            .call(
                "file/move",
                &a,
                &[("file_id", id), ("new_parent_folder_id", &f)],
            )
            .await;
        assert_eq!(v["response"], "File successfully moved.");
        assert_eq!(v["data"]["folderId"], f.as_str());
    }
    assert_eq!(
        names(&e.listing(&a, Some(&f)).await, "files", "filename").len(),
        2
    );
    let v = e
        .call(
            "file/move",
            &a,
            &[("file_id", &y), ("new_parent_folder_id", "null")],
        )
        .await;
    assert!(v["data"]["folderId"].is_null(), "{v}");
    let v = e
        .call(
            "file/move",
            &a,
            &[("file_id", &y), ("new_parent_folder_id", "4242")],
        )
        .await;
    assert_error(
        &v,
        "Could not find the destination folder id defined by new_parent_folder_id.",
    );

    // Copy: shape and duplicate names.
    let v = e
        .call(
            "file/copy",
            &a,
            &[("file_id", &x), ("copy_to_folder_id", &f)],
        )
        .await;
    assert_eq!(v["_status"], "success", "{v}");
    assert_eq!(v["response"], "File successfully copyied.");
    assert!(v.get("data").is_none());
    assert_eq!(v["original_file"]["data"]["id"], x.as_str());
    let copy = v["new_file"]["data"]["id"].as_str().unwrap().to_string();
    assert_ne!(copy, x);
    assert_eq!(v["new_file"]["data"]["filename"], "x.txt");
    assert_eq!(
        names(&e.listing(&a, Some(&f)).await, "files", "filename"),
        vec!["x.txt", "x.txt"]
    );
    let v = e
        .call(
            "file/copy",
            &a,
            &[("file_id", &x), ("copy_to_folder_id", "777")],
        )
        .await;
    assert_error(
        &v,
        "Could not find the destination folder id defined by copy_to_folder_id.",
    );

    // Delete: trash, detached; info still works; mutations refused.
    let v = e.call("file/delete", &a, &[("file_id", &x)]).await;
    assert_eq!(v["response"], "File successfully set as deleted.");
    assert_eq!(v["data"]["file_status"], "trash");
    assert!(v["data"]["folderId"].is_null());
    let info = e.file_info(&a, &x).await;
    assert_eq!(info["data"]["file_status"], "trash");
    for (ep, extra) in [
        ("file/edit", vec![("filename", "z")]),
        ("file/move", vec![("new_parent_folder_id", "null")]),
        ("file/copy", vec![("copy_to_folder_id", "null")]),
        ("file/delete", vec![]),
        ("file/download", vec![]),
    ] {
        let mut form = vec![("file_id", x.as_str())];
        form.extend(extra);
        assert_error(
            &e.call(ep, &a, &form).await,
            "Could not find file based on file_id.",
        );
    }
    // The copy's content is intact.
    let v = e.call("file/download", &a, &[("file_id", &copy)]).await;
    let url = v["data"]["download_url"].as_str().unwrap();
    let body = e.http.get(url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(&body[..], b"xx");
}

#[tokio::test]
async fn folders_listing_edit_move_delete() {
    let e = start().await;
    let a = e.authorize().await;
    let v = e
        .call(
            "folder/create",
            &a,
            &[
                ("folder_name", "Beta"),
                ("is_public", "1"),
                ("access_password", "d9729feb74992cc3482b350163a1a010"),
            ],
        )
        .await;
    assert_eq!(v["response"], "Folder successfully created.");
    let d = &v["data"];
    assert!(d["parentId"].is_null());
    assert_eq!(d["folderName"], "Beta");
    assert_eq!(d["isPublic"], "1");
    assert_eq!(d["totalSize"], "0");
    assert_eq!(d["file_count"], 0);
    assert_eq!(d["child_folder_count"], 0);
    assert_eq!(d["total_downloads"], 0);
    assert!(d["date_updated"].is_null());
    let beta = d["id"].as_str().unwrap().to_string();
    let alpha = e.create_folder(&a, "alpha", None).await;
    let dup = e.create_folder(&a, "alpha", None).await; // duplicates allowed
    assert_ne!(alpha, dup);
    let child = e.create_folder(&a, "child", Some(&beta)).await;
    e.upload_id(&a, "b.bin", b"12345", Some(&beta)).await;
    e.upload_id(&a, "a.bin", b"1", Some(&beta)).await;

    let root = e.listing(&a, None).await;
    assert_eq!(
        names(&root, "folders", "folderName"),
        vec!["alpha", "alpha", "Beta"]
    );
    let b = root["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == beta.as_str())
        .unwrap();
    assert_eq!(b["child_folder_count"], 1);
    assert_eq!(b["file_count"], 2);
    assert_eq!(b["totalSize"], "6");
    assert!(b.get("accessPassword").is_none());
    let inner = e.listing(&a, Some(&beta)).await;
    assert_eq!(names(&inner, "files", "filename"), vec!["a.bin", "b.bin"]);
    assert_eq!(names(&inner, "folders", "id"), vec![child.clone()]);

    let info = e.call("folder/info", &a, &[("folder_id", &beta)]).await;
    assert_eq!(
        info["data"]["accessPassword"],
        "d9729feb74992cc3482b350163a1a010"
    );
    assert_eq!(info["data"]["child_folder_count"], 1);

    // Edit: renames to a duplicate, leaves date_updated alone.
    let v = e
        .call(
            "folder/edit",
            &a,
            &[("folder_id", &beta), ("folder_name", "alpha")],
        )
        .await;
    assert_eq!(v["response"], "Folder successfully updated.");
    assert_eq!(v["data"]["folderName"], "alpha");
    assert!(v["data"]["date_updated"].is_null());

    // Move: into itself / a descendant refused; to a folder; back to root with null.
    let v = e
        .call(
            "folder/move",
            &a,
            &[("folder_id", &beta), ("new_parent_folder_id", &child)],
        )
        .await;
    assert_eq!(v["status"], "error", "{v}");
    let v = e
        .call(
            "folder/move",
            &a,
            &[("folder_id", &beta), ("new_parent_folder_id", &beta)],
        )
        .await;
    assert_eq!(v["status"], "error", "{v}");
    let v = e
        .call(
            "folder/move",
            &a,
            &[("folder_id", &beta), ("new_parent_folder_id", "")],
        )
        .await;
    assert_error(&v, "Please provide the new_parent_folder_id param.");
    let v = e
        .call(
            "folder/move",
            &a,
            &[("folder_id", &beta), ("new_parent_folder_id", &alpha)],
        )
        .await;
    assert_eq!(v["response"], "Folder successfully moved.");
    assert_eq!(v["data"]["parentId"], alpha.as_str());
    let v = e
        .call(
            "folder/move",
            &a,
            &[("folder_id", &beta), ("new_parent_folder_id", "null")],
        )
        .await;
    assert!(v["data"]["parentId"].is_null());
    e.call(
        "folder/move",
        &a,
        &[("folder_id", &beta), ("new_parent_folder_id", &alpha)],
    )
    .await;

    // Delete: trashes the subtree, the top folder reappears in the root without files.
    let deep = e.upload_id(&a, "deep.txt", b"d", Some(&child)).await;
    let v = e.call("folder/delete", &a, &[("folder_id", &beta)]).await;
    assert_eq!(v["response"], "Folder successfully set as deleted.");
    assert_eq!(v["_status"], "success");
    assert!(v.get("data").is_none());
    let root = e.listing(&a, None).await;
    let ids = names(&root, "folders", "id");
    assert!(ids.contains(&beta), "{root}");
    let b = root["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == beta.as_str())
        .unwrap();
    assert!(b["parentId"].is_null());
    assert!(b.get("status").is_none());
    assert_eq!(
        e.listing(&a, Some(&beta)).await["files"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert!(names(&e.listing(&a, Some(&alpha)).await, "folders", "id").is_empty());
    assert_eq!(e.file_info(&a, &deep).await["data"]["file_status"], "trash");
    let info = e.call("folder/info", &a, &[("folder_id", &beta)]).await;
    assert_eq!(info["_status"], "success");
}

#[tokio::test]
async fn tokens_revoked_expired_disabled() {
    let e = start_with(|c| c.token_idle_secs = 100).await;
    let a1 = e.authorize().await;
    let a2 = e.authorize().await;
    let msg = "Could not validate access_token and account_id, please reauthenticate or try again.";
    assert_error(&e.call("folder/listing", &a1, &[]).await, msg);
    assert_eq!(
        e.call("folder/listing", &a2, &[]).await["_status"],
        "success"
    );

    // Idle expiry; each call refreshes.
    e.clock.advance(Duration::from_secs(90));
    assert_eq!(
        e.call("folder/listing", &a2, &[]).await["_status"],
        "success"
    );
    e.clock.advance(Duration::from_secs(90));
    assert_eq!(
        e.call("folder/listing", &a2, &[]).await["_status"],
        "success"
    );
    e.clock.advance(Duration::from_secs(101));
    assert_error(&e.call("folder/listing", &a2, &[]).await, msg);

    let a3 = e.authorize().await;
    let v = e.call("disable_access_token", &a3, &[]).await;
    assert_eq!(v["response"], "Token removed or no longer available.");
    assert_eq!(v["_status"], "success");
    assert_error(&e.call("folder/listing", &a3, &[]).await, msg);
}

#[tokio::test]
async fn downloads_ranges_and_bad_tokens() {
    let e = start().await;
    let a = e.authorize().await;
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let id = e.upload_id(&a, "data.png", &content, None).await;
    let v = e.call("file/download", &a, &[("file_id", &id)]).await;
    assert_eq!(v["data"]["file_id"], id.as_str());
    assert_eq!(v["data"]["filename"], "data.png");
    let url = v["data"]["download_url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&e.base()), "{url}");
    let token = url.split("download_token=").nth(1).unwrap();
    assert_eq!(token.len(), 64);

    let r = e.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "100000");
    assert_eq!(r.bytes().await.unwrap().to_vec(), content);
    // Reusable; open-ended range → 206.
    let r = e
        .http
        .get(&url)
        .header("Range", "bytes=1000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 1000-99999/100000");
    assert_eq!(r.bytes().await.unwrap().to_vec(), content[1000..].to_vec());
    // Other ranges ignored.
    for range in ["bytes=0-", "bytes=10-20", "bytes=-5"] {
        let r = e
            .http
            .get(&url)
            .header("Range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{range}");
        assert_eq!(r.bytes().await.unwrap().len(), 100_000);
    }
    // Bad / missing token: HTML page, HTTP 200.
    let short = url
        .trim_start_matches(&format!("{}/", e.base()))
        .split('?')
        .next()
        .unwrap()
        .to_string();
    for u in [
        format!("{}/{short}?download_token=bad", e.base()),
        format!("{}/{short}", e.base()),
    ] {
        let r = e.http.get(&u).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(r.text().await.unwrap().contains("<html"));
    }
    // Expired after 24 h.
    e.clock.advance(Duration::from_secs(24 * 3600 + 5));
    let r = e.http.get(&url).send().await.unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    // Downloads are counted.
    let a = e.authorize().await;
    assert_eq!(e.file_info(&a, &id).await["data"]["downloads"], "5");
}

#[tokio::test]
async fn state_survives_restart() {
    let mut e = start().await;
    let a = e.authorize().await;
    let f = e.create_folder(&a, "keep", None).await;
    let id = e.upload_id(&a, "k.txt", b"kept", Some(&f)).await;
    e.restart_with(|_| {}).await;
    // The token survives too.
    let l = e.listing(&a, Some(&f)).await;
    assert_eq!(names(&l, "files", "id"), vec![id.clone()]);
    let v = e.call("file/download", &a, &[("file_id", &id)]).await;
    let url = v["data"]["download_url"].as_str().unwrap();
    assert_eq!(
        &e.http.get(url).send().await.unwrap().bytes().await.unwrap()[..],
        b"kept"
    );
    // Ids keep growing.
    let id2 = e.upload_id(&a, "k2.txt", b"x", None).await;
    assert!(id2.parse::<i64>().unwrap() > id.parse::<i64>().unwrap());
}

#[tokio::test]
async fn url_upload_fetches_in_background() {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/files/logo%20one.png", get(|| async { "PNGDATA" }))
        .route("/files/{name}", get(|| async { "PNGDATA" }))
        .route("/empty", get(|| async { "" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let src = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let e = start().await;
    let a = e.authorize().await;
    let folder = e.create_folder(&a, "imports", None).await;
    e.upload_id(&a, "logo.png", b"existing", Some(&folder))
        .await;
    use base64::Engine;
    let b64 = |u: &str| base64::engine::general_purpose::STANDARD.encode(u);
    let url = format!("http://{src}/files/logo.png");
    let v = e
        .call(
            "file/url_upload_add",
            &a,
            &[("file_url_base64", &b64(&url)), ("folder_id", &folder)],
        )
        .await;
    assert_eq!(v["response"], "File download from URL scheduled");
    assert_eq!(v["data"]["url"], url.as_str());
    let sid = v["data"]["scheduled_item_id"].as_i64().unwrap().to_string();

    let done = wait_for(10, || {
        let e = &e;
        let a = &a;
        let sid = sid.clone();
        async move {
            let v = e
                .call("file/url_upload_status", a, &[("scheduled_item_id", &sid)])
                .await;
            assert_eq!(v["response"], "Scheduled URL file download found");
            let s = v["data"]["status"].as_str().unwrap().to_string();
            assert!(
                ["pending", "downloading", "complete"].contains(&s.as_str()),
                "{v}"
            );
            (s == "complete").then_some(v)
        }
    })
    .await;
    let d = &done["data"];
    assert!(d["created"].is_string() && d["started"].is_string() && d["finished"].is_string());
    assert_eq!(d["total_size"], 7);
    assert_eq!(d["downloaded_file"]["name"], "logo (2).png");
    assert_eq!(d["downloaded_file"]["size"], 7);
    let fid = d["downloaded_file"]["file_id"]
        .as_i64()
        .unwrap()
        .to_string();
    let info = e.file_info(&a, &fid).await;
    assert_eq!(info["data"]["folderId"], folder.as_str());

    // A failing source ends as failed with an error message.
    let v = e
        .call(
            "file/url_upload_add",
            &a,
            &[("file_url_base64", &b64(&format!("http://{src}/empty")))],
        )
        .await;
    let sid = v["data"]["scheduled_item_id"].as_i64().unwrap().to_string();
    let failed = wait_for(10, || {
        let e = &e;
        let a = &a;
        let sid = sid.clone();
        async move {
            let v = e
                .call("file/url_upload_status", a, &[("scheduled_item_id", &sid)])
                .await;
            (v["data"]["status"] == "failed").then_some(v)
        }
    })
    .await;
    assert!(failed["data"]["error"].is_string(), "{failed}");
}
