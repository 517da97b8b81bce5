//! `POST /api/join` bodies: the strict `JoinRequest` decode, then the game's name rules
//! (`src/game/name.rs`: no marks or invisible characters, NFKC, one script, 1-20 characters,
//! unique by confusable skeleton). Nothing may panic; a stored name obeys the rules and
//! validates to itself; refusals have JSON bodies.
#![no_main]

use clickgame::error::ApiError;
use clickgame::game::{validate_name, EventKind, Game, NameKeys, Rules, MAX_NAME_CHARS};
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
        Ok((_, events)) => {
            let Some(EventKind::PlayerJoined { name, .. }) = events.first() else {
                panic!("a join without player_joined: {events:?}");
            };
            let chars = name.chars().count();
            assert!((1..=MAX_NAME_CHARS).contains(&chars), "{name:?}");
            assert!(
                name.chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.')),
                "{name:?}"
            );
            assert!(!name.contains("  ") && name.trim() == name, "{name:?}");
            assert_eq!(validate_name(name).as_ref(), Ok(name), "not stable");
            let ada = NameKeys::of("Ada");
            let keys = NameKeys::of(name);
            assert!(
                ada.0.iter().zip(&keys.0).all(|(a, k)| a != k),
                "{name:?} looks like Ada"
            );
        }
        Err(e) => {
            let err = ApiError::from(e);
            assert!(matches!(err.status.as_u16(), 400 | 409), "{err}");
            serde_json::from_str::<serde_json::Value>(&err.body()).expect("error JSON");
        }
    }
});
