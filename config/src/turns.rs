//! `[tenants.turns]`: when a caller's turn is over.

use serde::{Deserialize, Serialize};

use crate::checker::Checker;

/// `[tenants.turns]`: silences (after the caller's last speech) that end a turn. The VAD
/// hang-over (`[vad] hangover_ms`) is the shortest turn end there can be: a wait below it
/// takes effect as the hang-over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TurnsConfig {
    /// Silence that ends a turn, ms. Default 600.
    pub end_of_turn_ms: u32,
    /// Silence that ends a turn whose text ends a sentence (`.`, `?`, `!`), ms. Default 300.
    pub after_sentence_ms: u32,
    /// Silence that ends a turn while the plugin expects digits or a number, ms. Default 1500.
    pub expecting_number_ms: u32,
}

impl Default for TurnsConfig {
    fn default() -> Self {
        TurnsConfig {
            end_of_turn_ms: 600,
            after_sentence_ms: 300,
            expecting_number_ms: 1500,
        }
    }
}

/// `[tenants.turns]` as written.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawTurns {
    end_of_turn_ms: u32,
    after_sentence_ms: u32,
    expecting_number_ms: u32,
}

impl Default for RawTurns {
    fn default() -> Self {
        let d = TurnsConfig::default();
        RawTurns {
            end_of_turn_ms: d.end_of_turn_ms,
            after_sentence_ms: d.after_sentence_ms,
            expecting_number_ms: d.expecting_number_ms,
        }
    }
}

impl RawTurns {
    pub(crate) fn check(self, c: &mut Checker, key: &str) -> TurnsConfig {
        c.in_range(
            &format!("{key}.end_of_turn_ms"),
            self.end_of_turn_ms,
            100,
            10_000,
        );
        c.in_range(
            &format!("{key}.after_sentence_ms"),
            self.after_sentence_ms,
            0,
            10_000,
        );
        c.in_range(
            &format!("{key}.expecting_number_ms"),
            self.expecting_number_ms,
            100,
            20_000,
        );
        TurnsConfig {
            end_of_turn_ms: self.end_of_turn_ms,
            after_sentence_ms: self.after_sentence_ms,
            expecting_number_ms: self.expecting_number_ms,
        }
    }
}
