//! Symptoms the caller mentions, and which of them need emergency care now.

use serde::Serialize;

use crate::words::{Word, find_phrase, norms};

/// What the receptionist says at once when a caller describes an emergency.
pub const EMERGENCY_ADVICE: &str = "If this is an emergency, please hang up and call 112 now, \
or go to the nearest emergency department.";

/// Id of the extraction schema for what the caller said about their health.
pub const SYMPTOMS_SCHEMA: &str = "symptoms";

/// The `symptoms` extraction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Symptoms {
    /// The caller's words.
    pub reason: String,
    /// Whether anything mentioned needs emergency care.
    pub urgent: bool,
    /// Recognised symptoms, e.g. "cough", "chest pain".
    pub keywords: Vec<String>,
}

/// (phrases, keyword, urgent). Phrases are normalised words (no apostrophes).
const LEXICON: &[(&[&str], &str, bool)] = &[
    (
        &[
            "chest pain",
            "chest pains",
            "pain in my chest",
            "pain in the chest",
            "chest hurts",
            "chest is hurting",
            "tight chest",
            "chest tightness",
            "heart attack",
        ],
        "chest pain",
        true,
    ),
    (
        &[
            "cant breathe",
            "cannot breathe",
            "can not breathe",
            "unable to breathe",
            "not breathing",
            "difficulty breathing",
            "breathing difficulty",
            "trouble breathing",
            "hard to breathe",
            "struggling to breathe",
            "short of breath",
            "shortness of breath",
            "breathless",
            "choking",
        ],
        "breathing difficulty",
        true,
    ),
    (
        &[
            "unconscious",
            "passed out",
            "fainted",
            "collapsed",
            "unresponsive",
            "wont wake up",
            "not waking up",
        ],
        "unconscious",
        true,
    ),
    (
        &[
            "severe bleeding",
            "bleeding heavily",
            "heavy bleeding",
            "bleeding a lot",
            "bleeding badly",
            "wont stop bleeding",
            "lot of blood",
            "coughing up blood",
            "coughing blood",
            "vomiting blood",
        ],
        "severe bleeding",
        true,
    ),
    (
        &[
            "stroke",
            "face drooping",
            "face is drooping",
            "slurred speech",
            "slurring",
            "numb on one side",
            "weak on one side",
            "cant move my arm",
        ],
        "stroke signs",
        true,
    ),
    (
        &[
            "seizure",
            "seizures",
            "convulsion",
            "convulsions",
            "fitting",
        ],
        "seizure",
        true,
    ),
    (
        &["overdose", "poisoned", "poisoning", "swallowed poison"],
        "poisoning",
        true,
    ),
    (
        &["suicide", "suicidal", "kill myself", "end my life"],
        "suicidal thoughts",
        true,
    ),
    (
        &[
            "anaphylaxis",
            "anaphylactic",
            "throat is swelling",
            "throat swelling",
            "severe allergic reaction",
        ],
        "severe allergic reaction",
        true,
    ),
    (&["cough", "coughing"], "cough", false),
    (&["fever", "temperature", "feverish"], "fever", false),
    (
        &["cold", "runny nose", "blocked nose", "sneezing"],
        "cold",
        false,
    ),
    (&["flu"], "flu", false),
    (&["headache", "headaches", "migraine"], "headache", false),
    (&["sore throat", "throat pain"], "sore throat", false),
    (&["rash", "itching", "itchy"], "rash", false),
    (
        &[
            "stomach ache",
            "stomach pain",
            "tummy ache",
            "abdominal pain",
        ],
        "stomach pain",
        false,
    ),
    (
        &["vomiting", "nausea", "throwing up", "sick to my stomach"],
        "vomiting",
        false,
    ),
    (
        &["diarrhoea", "diarrhea", "loose motions"],
        "diarrhoea",
        false,
    ),
    (&["back pain", "backache", "bad back"], "back pain", false),
    (&["ear pain", "earache"], "ear pain", false),
    (&["toothache"], "toothache", false),
    (
        &["injury", "injured", "sprain", "sprained", "twisted my"],
        "injury",
        false,
    ),
    (&["dizzy", "dizziness"], "dizziness", false),
    (&["allergy", "allergies"], "allergy", false),
    (&["infection"], "infection", false),
    (&["check up", "checkup", "routine"], "check-up", false),
    (&["vaccination", "vaccine"], "vaccination", false),
    (&["prescription", "refill"], "prescription", false),
    (&["blood pressure"], "blood pressure", false),
    (&["diabetes"], "diabetes", false),
    (&["pregnant", "pregnancy"], "pregnancy", false),
    (&["anxiety", "depression", "stress"], "mental health", false),
];

/// Words that negate a symptom said just before it ("no chest pain", "I don't have a fever").
const NEGATIONS: &[&str] = &["no", "not", "dont", "without", "never", "isnt", "doesnt"];

/// The symptoms mentioned, and whether any needs emergency care.
pub fn assess(words: &[Word]) -> (Vec<String>, bool) {
    let n = norms(words);
    let mut keywords: Vec<String> = Vec::new();
    let mut urgent = false;
    for (phrases, keyword, is_urgent) in LEXICON {
        let mentioned = phrases.iter().any(|phrase| {
            find_phrase(&n, phrase).is_some_and(|at| {
                let negated = n[at.saturating_sub(3)..at]
                    .iter()
                    .any(|w| NEGATIONS.contains(w));
                !negated
            })
        });
        if mentioned && !keywords.iter().any(|k| k == keyword) {
            keywords.push(keyword.to_string());
            urgent |= is_urgent;
        }
    }
    if keywords.is_empty() && n.iter().any(|w| *w == "pain" || *w == "hurts") {
        keywords.push("pain".to_string());
    }
    (keywords, urgent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words::words;

    fn a(text: &str) -> (Vec<String>, bool) {
        assess(&words(text))
    }

    #[test]
    fn urgent_symptoms() {
        for text in [
            "I have chest pain.",
            "My father has a pain in his chest and his chest hurts.",
            "I can't breathe!",
            "She cannot breathe properly.",
            "He's having difficulty breathing.",
            "My husband is unconscious.",
            "She passed out.",
            "There's severe bleeding from his leg.",
            "I think he's having a stroke, his face is drooping.",
            "I'm short of breath.",
            "My son is having a seizure.",
        ] {
            assert!(a(text).1, "{text}");
        }
    }

    #[test]
    fn ordinary_symptoms() {
        assert_eq!(a("I have a bad cough."), (vec!["cough".to_string()], false));
        assert_eq!(
            a("Fever and a sore throat."),
            (vec!["fever".to_string(), "sore throat".to_string()], false)
        );
        assert_eq!(a("My knee pain."), (vec!["pain".to_string()], false));
        assert_eq!(a("Just a check-up."), (vec!["check-up".to_string()], false));
        assert_eq!(a("Tomorrow."), (vec![], false));
    }

    #[test]
    fn negated_emergencies_are_not_urgent() {
        assert!(!a("No chest pain, just a cough.").1);
        assert!(!a("I don't have chest pain.").1);
        assert_eq!(
            a("No chest pain, just a cough.").0,
            vec!["cough".to_string()]
        );
    }
}
