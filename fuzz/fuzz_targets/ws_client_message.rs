//! The WebSocket client-message decoder, and what the socket does with the result: a `resume`
//! catches up from the hub, a `click` is judged by the game, a refusal becomes an `error` reply.
//! Nothing may panic, every reply must be JSON, and a resume's batch must be in seq order.
#![no_main]

use clickgame::error::ApiError;
use clickgame::game::{Click, Game, Rules};
use clickgame::hub::{Hub, HubConfig};
use clickgame::protocol::{decode_client_message, ClientMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // actix-ws hands the socket only valid UTF-8 text (anything else is close 1007).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let decoded = decode_client_message(text);
    if decoded.is_ok() {
        // JSON objects only: serde would also take an array of the fields (found by the
        // bad-input table; protocol.rs now refuses it).
        let start = text.trim_start_matches([' ', '\t', '\n', '\r']);
        assert!(start.starts_with('{'), "accepted a non-object: {text:?}");
    }
    match decoded {
        Ok(ClientMessage::Resume { since, epoch }) => {
            let hub = Hub::new(
                Rules::default(),
                7,
                HubConfig { history: 4 },
            );
            for name in ["Ada", "Bea", "Cy", "Di", "Ed", "Flo"] {
                hub.join(name).expect("fresh names join");
            }
            let batch = hub.catch_up(since, epoch.as_deref());
            let seqs: Vec<u64> = batch.events.iter().map(|e| e.seq).collect();
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
            if let Some(last) = seqs.last() {
                assert_eq!(*last, batch.last_seq);
            }
            for event in &batch.events {
                serde_json::from_str::<serde_json::Value>(&event.json).expect("event JSON");
            }
        }
        Ok(ClientMessage::Click {
            id: _,
            round,
            x,
            y,
            player: _,
        }) => {
            let mut game = Game::new(Rules::default(), 7, 0);
            let (player, _) = game.join("Ada", 0).expect("Ada joins");
            game.tick(10_000); // the first round starts
            match game.click(player, Click { round, x, y }, 10_001) {
                Ok((outcome, _)) => {
                    serde_json::to_string(&outcome).expect("outcome serialises");
                    assert!((0.0..=1000.0).contains(&x) && (0.0..=1000.0).contains(&y));
                }
                Err(e) => {
                    let body = ApiError::from(e).body();
                    serde_json::from_str::<serde_json::Value>(&body).expect("error JSON");
                }
            }
        }
        Err(detail) => {
            let body = ApiError::bad_request("bad_message", detail).body();
            serde_json::from_str::<serde_json::Value>(&body).expect("error JSON");
        }
    }
});
