//! `?since=N&epoch=E` as the downstream GETs parse it: `web::Query::<ResumeQuery>` (strict:
//! whole numbers, no unknown keys), errors mapped by `ApiError::from_query`. Nothing may panic,
//! a refusal is `400 bad_query` with a JSON body, and an accepted `since` really is in the query.
#![no_main]

use actix_web::web;
use clickgame::error::ApiError;
use clickgame::protocol::ResumeQuery;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A request line's query string is visible ASCII, but actix hands on whatever bytes came;
    // `query_string()` is a `&str`, so only UTF-8 reaches the parser.
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    match web::Query::<ResumeQuery>::from_query(query) {
        Ok(q) => {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_str(query).expect("an accepted query decodes as pairs");
            if let Some(since) = q.since {
                assert!(
                    pairs
                        .iter()
                        .any(|(k, v)| k == "since" && v.parse::<u64>() == Ok(since)),
                    "since={since} from {query:?}"
                );
            }
            // Strict: whatever was accepted, one unknown key more is refused.
            let with_unknown = format!("{query}&zz_not_a_field=1");
            assert!(
                web::Query::<ResumeQuery>::from_query(&with_unknown).is_err(),
                "an unknown key accepted after {query:?}"
            );
        }
        Err(e) => {
            let err = ApiError::from_query(&e);
            assert_eq!(err.status.as_u16(), 400);
            assert_eq!(err.code, "bad_query");
            serde_json::from_str::<serde_json::Value>(&err.body()).expect("error JSON");
        }
    }
});
