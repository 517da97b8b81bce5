//! # Player names: one look, one player
//!
//! A scoreboard is only fair if every name on it is unambiguous. Unicode offers many ways to
//! write something that *looks* like `Ada`: a Cyrillic `А`, full-width `Ａｄａ`, an invisible
//! Hangul filler tacked on, `e` plus a combining accent instead of `é`. So a name goes through
//! four steps, in this order:
//!
//! 1. **Refuse what cannot be seen or does not stand alone**, on the raw text: combining marks
//!    (`e` + U+0301), invisible (default-ignorable) characters such as the Hangul fillers and
//!    zero-width joiners, and anything that is not a letter, a digit, a space or `-_.`.
//!    This comes *before* normalising, because NFKC would quietly turn `e` + U+0301 into `é`
//!    and so accept what we mean to refuse.
//! 2. **NFKC-normalise** (full-width `Ａ` becomes `A`, the ligature `ﬁ` becomes `fi`), then
//!    collapse runs of spaces into one. The normalised form is the name everybody sees.
//! 3. **Check the result again**: every letter must be allowed by Unicode's General Security
//!    Profile for identifiers (UTS #39: no obsolete, technical or limited-use characters), the
//!    name must have 1–20 characters, and its letters must come from one script — or one of
//!    the combinations UTS #39 calls *highly restrictive* (Latin with Han and Kana, Hangul or
//!    Bopomofo). Latin mixed with Cyrillic or Greek, the classic look-alike trick, is refused.
//! 4. **Compare skeletons** for uniqueness ([`NameKeys`]): two names collide when they look
//!    alike after case folding, using the UTS #39 confusable skeleton.
//!
//! The tables come from `unicode-normalization`, `unicode-security` (both unicode-rs; rustc
//! uses the latter for its own confusable-identifier lints) and `caseless` for full case
//! folding (`ß` folds to `ss`, which `to_lowercase` does not do). The road not taken: a
//! hand-made table of look-alikes, which would always be missing the next one.
//!
//! The price: names in scripts that are written with combining marks (Devanagari vowel signs,
//! Thai, Arabic vowel points) cannot be spelled in full. We accept that for a game whose names
//! are shown to a whole lecture hall; `docs/decisions.md` says more.

use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};
use unicode_security::{
    general_security_profile::IdentifierType, GeneralSecurityProfile, RestrictionLevel,
    RestrictionLevelDetection,
};

use super::GameError;

/// Longest player name, in characters, after normalising.
pub const MAX_NAME_CHARS: usize = 20;

/// The characters a name may hold besides letters and digits.
fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '_' | '.')
}

fn invalid(why: impl Into<String>) -> GameError {
    GameError::InvalidName(why.into())
}

/// Checks a player name and returns the form it is shown in: trimmed, NFKC-normalised, runs of
/// spaces collapsed. See the module text for the rules and their order.
pub fn validate_name(raw: &str) -> Result<String, GameError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(invalid("the name is empty"));
    }
    // Step 1, on the raw text.
    for c in trimmed.chars() {
        if is_combining_mark(c) {
            return Err(invalid(format!(
                "{c:?} is a combining mark; type the letter with its accent as one character \
                 (é, not e followed by an accent)"
            )));
        }
        if c.identifier_type() == Some(IdentifierType::Default_Ignorable) {
            return Err(invalid(format!(
                "{c:?} is an invisible character and is not allowed"
            )));
        }
        if !(c.is_alphanumeric() || is_separator(c)) {
            return Err(invalid(format!(
                "{c:?} is not allowed; use letters, digits, space and - _ ."
            )));
        }
    }
    // Step 2.
    let normalised: String = trimmed.nfkc().collect();
    let name = normalised
        .split(' ')
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    // Step 3, on what NFKC made of it: `⑴` is a digit but becomes `(1)`, `ﾞ` a letter but
    // becomes a combining mark.
    let len = name.chars().count();
    if len == 0 {
        return Err(invalid("the name is empty"));
    }
    if len > MAX_NAME_CHARS {
        return Err(invalid(format!(
            "the name has {len} characters; at most {MAX_NAME_CHARS} are allowed"
        )));
    }
    for c in name.chars().filter(|c| !is_separator(*c)) {
        if !c.is_alphanumeric() || is_combining_mark(c) || !c.identifier_allowed() {
            return Err(invalid(format!(
                "{c:?} (in {name:?} after normalising) is not allowed in names: Unicode's \
                 identifier profile restricts it"
            )));
        }
    }
    let letters: String = name.chars().filter(|c| !is_separator(*c)).collect();
    if letters.as_str().detect_restriction_level() > RestrictionLevel::HighlyRestrictive {
        return Err(invalid(format!(
            "{name:?} mixes scripts whose letters look alike (such as Latin and Cyrillic); \
             write it in one script"
        )));
    }
    Ok(name)
}

/// How a join's name is checked.
///
/// The road not taken: a flag inside [`validate_name`]. The naive way is a separate, visible
/// value, so that no caller can reach it by accident: only the lab (`--lab`, with its `input`
/// defence switched off) passes [`NameCheck::Naive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameCheck {
    /// [`validate_name`]: the four steps above. Always, outside the lab.
    Validate,
    /// What a naive server does: the name is stored exactly as sent, markup and all; only an
    /// empty one is refused. Its length is bounded by the request body limit (1 KiB), and
    /// uniqueness still compares [`NameKeys`], so players stay apart.
    Naive,
}

impl NameCheck {
    /// The name to store for `raw`, or why not.
    pub fn apply(self, raw: &str) -> Result<String, GameError> {
        match self {
            NameCheck::Validate => validate_name(raw),
            NameCheck::Naive if raw.trim().is_empty() => Err(invalid("the name is empty")),
            NameCheck::Naive => Ok(raw.to_string()),
        }
    }
}

/// What uniqueness compares: two forms of a name's look. Two names collide when either form
/// is equal.
///
/// * the confusable skeleton of the case-folded name: `Straße` and `STRASSE` (folding makes
///   `ß` into `ss`), `Ada` and `ＡＤＡ`, `Ada` and a Cyrillic `Аda`;
/// * the case fold of the skeleton: the skeleton is case-sensitive (it maps `I` and `1` to
///   `l`, `0` to `O`), so `Al`/`AI` and `B0b`/`Bob` collide only when the skeleton comes first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NameKeys(pub [String; 2]);

impl NameKeys {
    pub fn of(name: &str) -> NameKeys {
        let folded = caseless::default_case_fold_str(name);
        let skeleton_of_fold: String = unicode_security::skeleton(&folded).collect();
        let skeleton: String = unicode_security::skeleton(name).collect();
        NameKeys([skeleton_of_fold, caseless::default_case_fold_str(&skeleton)])
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use unicode_normalization::{is_nfkc, UnicodeNormalization};

    use super::*;
    use crate::game::{Game, Rules};

    fn refused(raw: &str) -> bool {
        matches!(validate_name(raw), Err(GameError::InvalidName(_)))
    }

    /// A game where `taken` already plays; the answer to a join as `raw`.
    fn join_after(taken: &str, raw: &str) -> Result<String, GameError> {
        let mut game = Game::new(Rules::default(), 1, 0);
        game.join(taken, 0).unwrap();
        game.join(raw, 0)?;
        Ok(game.state().players.values().last().unwrap().name.clone())
    }

    #[test]
    fn the_look_alikes_of_the_attack_are_refused_or_collide() {
        // Cyrillic capital A (U+0410) in a Latin name: mixed scripts.
        assert!(refused("\u{410}da"));
        // Full-width forms normalise to ASCII, and then collide.
        assert_eq!(validate_name("Ａｄａ").unwrap(), "Ada");
        assert!(matches!(
            join_after("Ada", "ＡＤＡ"),
            Err(GameError::NameTaken(_))
        ));
        assert!(matches!(
            join_after("Ada", "Ａｄａ"),
            Err(GameError::NameTaken(_))
        ));
        // Three Hangul fillers (invisible), alone or after a name; the half-width filler too.
        assert!(refused("\u{3164}\u{3164}\u{3164}"));
        assert!(refused("Ada\u{3164}"));
        assert!(refused("\u{115F}\u{1160}"));
        assert!(refused("Ada\u{FFA0}"));
        // Full case folding: ß is ss.
        assert!(matches!(
            join_after("Straße", "STRASSE"),
            Err(GameError::NameTaken(_))
        ));
        assert!(matches!(
            join_after("STRASSE", "straße"),
            Err(GameError::NameTaken(_))
        ));
        // Runs of spaces collapse.
        assert_eq!(validate_name("Ada    Lovelace").unwrap(), "Ada Lovelace");
        assert!(matches!(
            join_after("Ada Lovelace", "Ada   Lovelace"),
            Err(GameError::NameTaken(_))
        ));
    }

    #[test]
    fn whole_script_look_alikes_and_digit_letter_swaps_collide() {
        // All-Cyrillic "Аса" looks exactly like Latin "Aca".
        assert_eq!(validate_name("\u{410}\u{441}\u{430}").unwrap(), "Аса");
        assert!(matches!(
            join_after("Aca", "\u{410}\u{441}\u{430}"),
            Err(GameError::NameTaken(_))
        ));
        assert!(matches!(
            join_after("Bob", "B0b"),
            Err(GameError::NameTaken(_))
        ));
        assert!(matches!(
            join_after("Al", "AI"),
            Err(GameError::NameTaken(_))
        ));
        assert!(matches!(
            join_after("Mary", "rnary"),
            Err(GameError::NameTaken(_))
        ));
        // Different names stay different.
        assert_eq!(join_after("Ada", "Adam").unwrap(), "Adam");
        assert_eq!(join_after("Иван", "Ivan").unwrap(), "Ivan");
    }

    #[test]
    fn marks_and_invisible_characters_are_refused_before_normalising() {
        // NFKC would make these precomposed é/ë; refused instead, as before.
        assert!(refused("Zoe\u{0308}"));
        assert!(refused(&"e\u{0301}".repeat(10)));
        for invisible in [
            "a\u{200B}b",
            "a\u{200D}b",
            "\u{202E}nimda",
            "a\u{00AD}b",
            "a\u{2060}b",
        ] {
            assert!(refused(invisible), "{invisible:?}");
        }
        // What NFKC turns into something not allowed is refused after it.
        assert!(refused("⑴")); // becomes "(1)"
        assert!(refused("ﾞ")); // the half-width voicing mark becomes a combining mark…
        assert_eq!(validate_name("ｶﾞ").unwrap(), "ガ"); // …which NFKC joins to a letter before it
        assert!(refused(&"㍿".repeat(6))); // 6 characters, but 24 after normalising
    }

    #[test]
    fn names_of_one_script_and_the_highly_restrictive_mixes_are_welcome() {
        for ok in [
            "Zoë",
            "Ünal Öztürk",
            "Αλέξης",
            "Иван",
            "さくら",
            "田中太郎",
            "김민준",
            "Ada田中",
            "x_1-y.z",
        ] {
            assert_eq!(validate_name(ok).unwrap(), ok);
        }
        assert_eq!(validate_name("ﬁona").unwrap(), "fiona");
        // Latin with Greek or Cyrillic is not.
        assert!(refused("Alpha\u{3B2}"));
        assert!(refused("Bob\u{43E}"));
    }

    /// Characters from the families attackers use: Latin and its Cyrillic and Greek twins,
    /// full-width forms, digits, spaces, combining marks, invisible characters, ß and friends.
    fn tricky_char() -> impl Strategy<Value = char> {
        prop_oneof![
            prop::char::range('a', 'z'),
            prop::char::range('A', 'Z'),
            prop::char::range('0', '9'),
            Just(' '),
            Just('-'),
            Just('.'),
            Just('_'),
            prop::char::range('\u{410}', '\u{44F}'),
            prop::char::range('\u{391}', '\u{3C9}'),
            prop::char::range('\u{FF21}', '\u{FF5A}'),
            prop::char::range('\u{300}', '\u{36F}'),
            prop::sample::select(vec![
                'ß', 'ẞ', 'ﬁ', 'ǅ', 'ǆ', 'ı', 'İ', '\u{3164}', '\u{115F}', '\u{200B}', '\u{00A0}',
                '\u{3000}', 'ｶ', 'ﾞ', '⑴', '日', 'さ', '김', 'é', 'Å', '\u{212B}',
            ]),
        ]
    }

    fn tricky_name() -> impl Strategy<Value = String> {
        prop::collection::vec(tricky_char(), 0..26).prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// What the validator returns is what it would return again: a stored name survives a
        /// restart's re-validation unchanged.
        #[test]
        fn an_accepted_name_is_normal_and_validates_to_itself(raw in tricky_name()) {
            if let Ok(name) = validate_name(&raw) {
                prop_assert_eq!(validate_name(&name), Ok(name.clone()));
                let len = name.chars().count();
                prop_assert!((1..=MAX_NAME_CHARS).contains(&len));
                prop_assert!(is_nfkc(&name), "{:?}", name);
                prop_assert!(!name.contains("  ") && name.trim() == name);
                prop_assert!(name.chars().all(|c| !is_combining_mark(c)));
                prop_assert!(name.chars().all(|c| c.is_alphanumeric() || is_separator(c)));
            }
        }

        #[test]
        fn any_string_is_answered_without_panicking(raw in "\\PC{0,40}") {
            let _ = validate_name(&raw);
        }

        /// Case and width variants of a playing name are never a second player.
        #[test]
        fn upper_lower_and_full_width_variants_of_a_name_collide(raw in "[A-Za-z][A-Za-z0-9]{0,9}") {
            let name = validate_name(&raw).unwrap();
            let full_width: String = raw
                .chars()
                .map(|c| char::from_u32(u32::from(c) - 0x21 + 0xFF01).unwrap())
                .collect();
            prop_assert_eq!(validate_name(&full_width).unwrap(), name.clone());
            for variant in [raw.to_uppercase(), raw.to_lowercase(), full_width] {
                prop_assert!(
                    matches!(join_after(&name, &variant), Err(GameError::NameTaken(_))),
                    "{:?} beside {:?}", variant, name
                );
            }
        }

        /// Normalising first and comparing keys agree: NFKC-equal inputs have equal keys.
        #[test]
        fn nfkc_equal_names_have_equal_keys(raw in tricky_name()) {
            if let Ok(name) = validate_name(&raw) {
                let nfkc: String = raw.trim().nfkc().collect();
                if let Ok(other) = validate_name(&nfkc) {
                    prop_assert_eq!(NameKeys::of(&name), NameKeys::of(&other));
                }
            }
        }
    }
}
