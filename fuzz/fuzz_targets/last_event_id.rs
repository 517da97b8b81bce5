//! The SSE `Last-Event-ID` header: any bytes a header value may hold. Nothing may panic; a seq
//! comes only from a whole number; a refusal is `400 bad_last_event_id` with a JSON body.
#![no_main]

use actix_web::http::header::HeaderValue;
use clickgame::transport::sse::parse_last_event_id;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return; // actix's parser refuses such a header before any handler runs
    };
    match parse_last_event_id(Some(&value)) {
        Ok(Some(seq)) => {
            let text = value
                .to_str()
                .expect("a seq comes from visible ASCII")
                .trim();
            assert_eq!(text.parse::<u64>(), Ok(seq));
        }
        Ok(None) => {
            let text = value.to_str().unwrap_or_default().trim();
            assert!(text.is_empty(), "{text:?} ignored instead of refused");
        }
        Err(err) => {
            assert_eq!(err.status.as_u16(), 400);
            assert_eq!(err.code, "bad_last_event_id");
            serde_json::from_str::<serde_json::Value>(&err.body()).expect("error JSON");
        }
    }
});
