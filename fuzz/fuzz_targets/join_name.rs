//! `POST /api/join` bodies: the strict `JoinRequest` decode, then the game's name rules
//! (1-20 characters after trimming; letters, digits, space, `-_.`; unique ignoring case).
//! Nothing may panic; an accepted name obeys the rules; refusals have JSON bodies.
#![no_main]

use clickgame::error::ApiError;
use clickgame::game::{Game, Rules, MAX_NAME_CHARS};
use clickgame::protocol::JoinRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<JoinRequest>(data) else {
        return;
    };
    let start = data.iter().position(|b| !b" \t\n\r".contains(b));
    assert_eq!(start.map(|i| data[i]), Some(b'{'), "accepted a non-object");
    let mut game = Game::new(Rules::default(), 7, 0);
    game.join("Ada", 0).expect("Ada joins");
    match game.join(&request.name, 1) {
        Ok(_) => {
            let name = request.name.trim();
            let chars = name.chars().count();
            assert!((1..=MAX_NAME_CHARS).contains(&chars), "{name:?}");
            assert!(
                name.chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.')),
                "{name:?}"
            );
            assert_ne!(name.to_lowercase(), "ada");
        }
        Err(e) => {
            let err = ApiError::from(e);
            assert!(matches!(err.status.as_u16(), 400 | 409), "{err}");
            serde_json::from_str::<serde_json::Value>(&err.body()).expect("error JSON");
        }
    }
});
