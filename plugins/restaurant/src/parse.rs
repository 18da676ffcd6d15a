//! Rule-based understanding of the caller's other answers: yes/no, "that's all", delivery
//! or pickup, the address, the name, and requests such as "what's on the menu".

use crate::words::{Word, contains_phrase, find_phrase, norms, source_text};

/// Delivery to an address, or pickup at the restaurant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fulfilment {
    /// Brought to the caller's address.
    Delivery,
    /// Collected by the caller.
    Pickup,
}

impl Fulfilment {
    /// As stored in the extraction and in caller memory.
    pub fn id(self) -> &'static str {
        match self {
            Fulfilment::Delivery => "delivery",
            Fulfilment::Pickup => "pickup",
        }
    }

    /// The inverse of [`id`](Self::id).
    pub fn from_id(id: &str) -> Option<Fulfilment> {
        match id {
            "delivery" => Some(Fulfilment::Delivery),
            "pickup" => Some(Fulfilment::Pickup),
            _ => None,
        }
    }
}

/// A yes (`Some(true)`) or no (`Some(false)`) answer; negatives win ("no, that's not right").
pub fn yes_no(words: &[Word]) -> Option<bool> {
    let n = norms(words);
    const NO: &[&str] = &[
        "no",
        "nope",
        "nah",
        "not",
        "wrong",
        "incorrect",
        "isnt",
        "dont",
        "change",
        "wait",
    ];
    const YES: &[&str] = &[
        "yes",
        "yeah",
        "yep",
        "yup",
        "ya",
        "correct",
        "right",
        "sure",
        "ok",
        "okay",
        "confirm",
        "confirmed",
        "absolutely",
        "perfect",
        "great",
        "fine",
        "exactly",
        "definitely",
        "good",
        "alright",
    ];
    if n.iter().any(|w| NO.contains(w)) {
        Some(false)
    } else if n.iter().any(|w| YES.contains(w))
        || ["go ahead", "place the order", "place it", "sounds good"]
            .iter()
            .any(|p| contains_phrase(&n, p))
    {
        Some(true)
    } else {
        None
    }
}

/// "That's all", "nothing else", "no thanks": the caller has finished ordering items.
pub fn done_ordering(words: &[Word]) -> bool {
    let n = norms(words);
    const PHRASES: &[&str] = &[
        "thats all",
        "that is all",
        "thats it",
        "that is it",
        "that will be all",
        "thatll be all",
        "that would be all",
        "thats everything",
        "that is everything",
        "nothing else",
        "nothing more",
        "no more",
        "no thanks",
        "no thank you",
        "im done",
        "i am done",
        "all done",
        "thats enough",
        "thats about it",
        "nothing",
        "done",
        "finished",
    ];
    PHRASES.iter().any(|p| contains_phrase(&n, p))
        || matches!(
            n.as_slice(),
            ["no"]
                | ["nope"]
                | ["no", "no"]
                | ["thank", "you"]
                | ["thanks"]
                | ["thank", "you", "very", "much"]
        )
}

/// Delivery or pickup, if the caller said which ("Delivery, please", "I'll pick it up").
pub fn fulfilment(words: &[Word]) -> Option<Fulfilment> {
    let n = norms(words);
    const PICKUP: &[&str] = &[
        "pickup",
        "pick up",
        "pick it up",
        "picking up",
        "picking it up",
        "collect",
        "collection",
        "takeaway",
        "take away",
        "takeout",
        "take out",
        "carry out",
        "come and get",
        "come get",
        "come over",
        "come by",
        "self pickup",
    ];
    const DELIVERY: &[&str] = &[
        "delivery",
        "deliver",
        "delivered",
        "deliveries",
        "home delivery",
        "send it",
        "bring it",
    ];
    let pickup = PICKUP.iter().filter_map(|p| find_phrase(&n, p)).min();
    let delivery = DELIVERY.iter().filter_map(|p| find_phrase(&n, p)).min();
    match (delivery, pickup) {
        (Some(d), Some(p)) => Some(if d < p {
            Fulfilment::Delivery
        } else {
            Fulfilment::Pickup
        }),
        (Some(_), None) => Some(Fulfilment::Delivery),
        (None, Some(_)) => Some(Fulfilment::Pickup),
        (None, None) => None,
    }
}

/// Lead-ins stripped from an address, longest first.
const ADDRESS_LEAD_INS: &[&str] = &[
    "please deliver it to",
    "please deliver to",
    "you can deliver it to",
    "deliver it to",
    "deliver to",
    "delivery to",
    "send it to",
    "the address is",
    "my address is",
    "address is",
    "the delivery address is",
    "it is",
    "its",
    "i live at",
    "i live in",
    "im at",
    "i am at",
    "at",
    "to",
    "um",
    "uh",
    "yes",
    "okay",
    "ok",
    "sure",
];

/// Words dropped from the end of an address.
const ADDRESS_TAILS: &[&str] = &["please", "thanks", "thank you", "thank you very much"];

/// The delivery address as said (whisper's spelling kept), lead-ins and courtesies removed,
/// at most 200 bytes. `None` if nothing address-like is left.
pub fn address(text: &str, words: &[Word]) -> Option<String> {
    let mut start = 0;
    'strip: loop {
        let n = norms(words.get(start..).unwrap_or(&[]));
        for lead in ADDRESS_LEAD_INS {
            let len = lead.split_whitespace().count();
            if find_phrase(&n, lead) == Some(0) && n.len() > len {
                start += len;
                continue 'strip;
            }
        }
        break;
    }
    let mut end = words.len();
    'tail: loop {
        let n = norms(words.get(start..end).unwrap_or(&[]));
        for tail in ADDRESS_TAILS {
            let len = tail.split_whitespace().count();
            if n.len() > len && find_phrase(&n[n.len() - len..], tail) == Some(0) {
                end -= len;
                continue 'tail;
            }
        }
        break;
    }
    let rest = words.get(start..end)?;
    let n = norms(rest);
    let meaningless = n.iter().all(|w| {
        matches!(
            *w,
            "yes" | "no" | "yeah" | "ok" | "okay" | "um" | "uh" | "hmm" | "delivery" | "please"
        )
    });
    if rest.is_empty() || meaningless {
        return None;
    }
    let mut address = source_text(text, rest).trim().to_string();
    if address.len() > 200 {
        let cut = (0..=200)
            .rev()
            .find(|&i| address.is_char_boundary(i))
            .unwrap_or(0);
        address.truncate(cut);
    }
    (!address.is_empty()).then_some(address)
}

/// Words that mark an address ("12 Church Street", "flat 4, Green Park Apartments").
const ADDRESS_WORDS: &[&str] = &[
    "road",
    "roads",
    "street",
    "streets",
    "lane",
    "avenue",
    "nagar",
    "colony",
    "layout",
    "apartment",
    "apartments",
    "flat",
    "house",
    "floor",
    "block",
    "sector",
    "cross",
    "main",
    "marg",
    "society",
    "building",
    "tower",
    "phase",
    "stage",
    "number",
    "plot",
    "villa",
];

/// Whether an answer sounds like an address: a number and a street word.
pub fn looks_like_address(words: &[Word]) -> bool {
    let n = norms(words);
    let numbered = n.iter().any(|w| {
        w.chars().all(|c| c.is_ascii_digit())
            || crate::words::count_at(&[w], 0).is_some_and(|(v, _)| v > 1)
    }) || n.contains(&"number");
    n.len() >= 2 && numbered && n.iter().any(|w| ADDRESS_WORDS.contains(w))
}

/// Words that end a name ("Priya, and I'd like…").
const NAME_STOPS: &[&str] = &[
    "and", "i", "im", "ive", "id", "calling", "speaking", "here", "please", "from", "for", "to",
    "with", "thanks", "thank", "but", "so", "who", "on", "at",
];

/// Words that are never part of a name.
const NOT_NAMES: &[&str] = &[
    "yes", "yeah", "no", "ok", "okay", "um", "uh", "hmm", "hello", "hi", "sorry", "the", "a", "an",
    "is", "my", "name", "what", "not", "sure", "dont", "know", "it", "its", "this", "delivery",
    "pickup", "order", "thats", "all", "nothing", "else",
];

/// Phrases that introduce a name in any answer.
const NAME_MARKERS: &[&str] = &["my name is", "my names", "name is", "names", "call me"];

/// Phrases that introduce a name when the caller was asked for it.
const ASKED_NAME_MARKERS: &[&str] = &["this is", "i am", "im", "it is", "its", "its for"];

/// The caller's name. With `asked` (the caller was asked for it) a bare answer counts
/// ("Priya."); otherwise only an explicit "my name is …".
pub fn name(words: &[Word], asked: bool) -> Option<String> {
    let n = norms(words);
    let marker_end = NAME_MARKERS
        .iter()
        .chain(if asked { ASKED_NAME_MARKERS } else { &[] })
        .filter_map(|m| find_phrase(&n, m).map(|at| (at, at + m.split_whitespace().count())))
        .min_by_key(|(at, end)| (*at, std::cmp::Reverse(*end)))
        .map(|(_, end)| end);
    let start = match marker_end {
        Some(end) => end,
        None if asked => words.iter().position(|w| {
            !matches!(
                w.norm.as_str(),
                "um" | "uh" | "hi" | "hello" | "yes" | "yeah" | "sure" | "ok" | "okay" | "well"
            )
        })?,
        None => return None,
    };
    let mut parts = Vec::new();
    for word in words.get(start..)? {
        if NAME_STOPS.contains(&word.norm.as_str()) {
            break;
        }
        if NOT_NAMES.contains(&word.norm.as_str())
            || !word.norm.chars().all(char::is_alphabetic)
            || parts.len() == 4
        {
            return None;
        }
        parts.push(capitalised(&word.raw));
        if word.ends_clause {
            break;
        }
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) if word.chars().all(|c| !c.is_uppercase()) => {
            first.to_uppercase().chain(chars).collect()
        }
        _ => word.to_string(),
    }
}

/// "What's on the menu?", "what do you have": the caller wants to hear the menu.
pub fn wants_menu(words: &[Word]) -> bool {
    let n = norms(words);
    n.contains(&"menu")
        || [
            "what do you have",
            "what have you got",
            "what do you serve",
            "what can i order",
            "what can i get",
            "what are the options",
            "what options",
        ]
        .iter()
        .any(|p| contains_phrase(&n, p))
}

/// "Cancel the order", "forget it": the caller wants no order at all.
pub fn cancels_order(words: &[Word]) -> bool {
    let n = norms(words);
    [
        "cancel the order",
        "cancel my order",
        "cancel the whole order",
        "cancel everything",
        "cancel it all",
        "forget it",
        "forget the order",
        "never mind",
        "nevermind",
        "dont want anything",
        "i dont want to order",
    ]
    .iter()
    .any(|p| contains_phrase(&n, p))
}

/// "Make it …", "change …", "actually …": the caller corrects what was ordered rather than
/// adding to it.
pub fn corrects(words: &[Word]) -> bool {
    let n = norms(words);
    [
        "make it",
        "make that",
        "change",
        "instead",
        "actually",
        "only",
    ]
    .iter()
    .any(|p| contains_phrase(&n, p))
}

/// "Make it three", "make that 2": a new count for the item just ordered.
pub fn new_count(words: &[Word]) -> Option<u32> {
    let n = norms(words);
    let at = find_phrase(&n, "make it").or_else(|| find_phrase(&n, "make that"))?;
    crate::words::count_at(&n, at + 2)
        .filter(|(_, used)| at + 2 + used == n.len() || words[at + 1 + used].ends_clause)
        .map(|(v, _)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words::words;

    #[test]
    fn yes_and_no() {
        let yn = |text: &str| yes_no(&words(text));
        for yes in [
            "Yes.",
            "Yes, that's right.",
            "Correct.",
            "Yeah, go ahead.",
            "Okay",
        ] {
            assert_eq!(yn(yes), Some(true), "{yes}");
        }
        for no in ["No.", "No, remove the lassi.", "That's wrong.", "Wait"] {
            assert_eq!(yn(no), Some(false), "{no}");
        }
        assert_eq!(yn("Hmm."), None);
    }

    #[test]
    fn finishing_the_item_list() {
        for done in [
            "That's all.",
            "That's it, thanks.",
            "Nothing else.",
            "No thank you.",
            "No.",
            "That will be all.",
        ] {
            assert!(done_ordering(&words(done)), "{done}");
        }
        assert!(!done_ordering(&words("One coffee.")));
        assert!(!done_ordering(&words("No onion, please.")));
    }

    #[test]
    fn delivery_or_pickup() {
        let f = |text: &str| fulfilment(&words(text));
        assert_eq!(f("Delivery, please."), Some(Fulfilment::Delivery));
        assert_eq!(f("Please deliver it."), Some(Fulfilment::Delivery));
        assert_eq!(f("Pickup."), Some(Fulfilment::Pickup));
        assert_eq!(f("Pick up, please."), Some(Fulfilment::Pickup));
        assert_eq!(f("I'll pick it up."), Some(Fulfilment::Pickup));
        assert_eq!(f("Takeaway"), Some(Fulfilment::Pickup));
        assert_eq!(
            f("Not delivery, I will pick it up"),
            Some(Fulfilment::Delivery),
            "the first one said wins; the plugin reads no/not separately"
        );
        assert_eq!(f("Yes."), None);
        assert_eq!(Fulfilment::from_id("pickup"), Some(Fulfilment::Pickup));
        assert_eq!(
            Fulfilment::from_id(Fulfilment::Delivery.id()),
            Some(Fulfilment::Delivery)
        );
    }

    #[test]
    fn addresses_keep_the_callers_words() {
        let a = |text: &str| address(text, &words(text));
        assert_eq!(
            a("12 MG Road, Bangalore.").as_deref(),
            Some("12 MG Road, Bangalore")
        );
        assert_eq!(
            a("It's flat 4B, 12 MG Road, please.").as_deref(),
            Some("flat 4B, 12 MG Road")
        );
        assert_eq!(
            a("Deliver to 7 Church Street.").as_deref(),
            Some("7 Church Street")
        );
        assert_eq!(a("Yes."), None);
        assert!(looks_like_address(&words(
            "Number 12, Church Street, Bangalore"
        )));
        assert!(looks_like_address(&words("Twelve MG Road.")));
        assert!(!looks_like_address(&words("One chicken curry.")));
        assert!(!looks_like_address(&words("Home delivery.")));
        assert_eq!(a("um"), None);
        assert!(a(&"Road ".repeat(100)).unwrap().len() <= 200);
    }

    #[test]
    fn names() {
        let asked = |text: &str| name(&words(text), true);
        assert_eq!(asked("My name is Priya.").as_deref(), Some("Priya"));
        assert_eq!(asked("Priya Sharma.").as_deref(), Some("Priya Sharma"));
        assert_eq!(asked("priya").as_deref(), Some("Priya"));
        assert_eq!(asked("It's Ravi.").as_deref(), Some("Ravi"));
        assert_eq!(asked("Yes."), None);
        assert_eq!(asked("My name is 42"), None);
        let passing = |text: &str| name(&words(text), false);
        assert_eq!(
            passing("Hi, my name is Priya, I'd like a dosa.").as_deref(),
            Some("Priya")
        );
        assert_eq!(passing("Priya"), None);
    }

    #[test]
    fn menu_cancel_and_corrections() {
        assert!(wants_menu(&words("What's on the menu?")));
        assert!(wants_menu(&words("What do you have?")));
        assert!(!wants_menu(&words("Two dosas.")));
        assert!(cancels_order(&words("Cancel the order.")));
        assert!(cancels_order(&words("Never mind.")));
        assert!(!cancels_order(&words("Cancel the lassi.")));
        assert!(corrects(&words("Make it three dosas.")));
        assert!(!corrects(&words("Three dosas.")));
        assert_eq!(new_count(&words("Make it three.")), Some(3));
        assert_eq!(new_count(&words("make that 2")), Some(2));
        assert_eq!(new_count(&words("Make it spicy.")), None);
    }
}
