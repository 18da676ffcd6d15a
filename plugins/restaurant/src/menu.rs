//! The restaurant's menu, from the tenant's plugin configuration, and how caller words
//! are matched to its items and customizations.
//!
//! Configuration (the tenant's `plugin_config`, a JSON object):
//!
//! ```json
//! {
//!   "restaurant_name": "Spice Garden",
//!   "delivery_minutes": 45,
//!   "pickup_minutes": 20,
//!   "menu": [
//!     { "id": "masala_dosa", "name": "masala dosa", "price_inr": 120, "veg": true,
//!       "aliases": ["dosa"],
//!       "customizations": ["no onion", { "name": "spicy", "aliases": ["hot"], "group": "spice" }] }
//!   ]
//! }
//! ```
//!
//! `aliases` are other ways callers (or whisper) say the item; `plural` overrides the spoken
//! plural (default: the name plus "s"); a customization's `group` makes its options exclusive
//! (choosing "mild" replaces "spicy").

use serde::Deserialize;

use crate::words::{edit_distance, words};

/// Restaurant name used when the configuration gives none.
pub const DEFAULT_RESTAURANT_NAME: &str = "our restaurant";
/// Most items a menu may have.
pub const MAX_MENU_ITEMS: usize = 100;
/// Highest price of one item, in rupees.
pub const MAX_PRICE_INR: u32 = 100_000;

/// Why the tenant's plugin configuration is not a usable menu.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The configuration does not parse into the expected shape.
    #[error("plugin configuration is not valid: {0}")]
    Invalid(String),
    /// There is no `menu`, or it is empty.
    #[error("plugin configuration has no menu items")]
    NoMenu,
    /// More items than [`MAX_MENU_ITEMS`].
    #[error("the menu has {0} items; at most {MAX_MENU_ITEMS} are allowed")]
    TooManyItems(usize),
    /// One item is unusable.
    #[error("menu[{index}]: {problem}")]
    Item {
        /// Position in `menu`.
        index: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// Two items share an id.
    #[error("menu item id `{0}` is used twice")]
    DuplicateId(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    restaurant_name: Option<String>,
    delivery_minutes: Option<u32>,
    pickup_minutes: Option<u32>,
    menu: Option<Vec<RawItem>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    id: String,
    name: String,
    price_inr: u32,
    veg: bool,
    #[serde(default)]
    plural: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    customizations: Vec<RawCustomization>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawCustomization {
    Name(String),
    Detailed {
        name: String,
        #[serde(default)]
        aliases: Vec<String>,
        #[serde(default)]
        group: Option<String>,
    },
}

/// A phrase callers say, as normalised words ("masala dosa" → ["masala", "dosa"]).
pub type Phrase = Vec<String>;

/// A way an item can be changed ("no onion", "spicy").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customization {
    /// Canonical name, as stored with the order.
    pub name: String,
    /// Options in the same group exclude each other.
    pub group: Option<String>,
    /// What callers say for it.
    pub phrases: Vec<Phrase>,
}

/// One dish or drink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuItem {
    /// Stable id, stored with orders.
    pub id: String,
    /// Name as the restaurant writes it.
    pub name: String,
    /// Spoken plural.
    pub plural: String,
    /// Price of one, in rupees.
    pub price_inr: u32,
    /// Vegetarian.
    pub veg: bool,
    /// What callers say for it: the name, its plural and the aliases.
    pub phrases: Vec<Phrase>,
    /// Ways it can be changed.
    pub customizations: Vec<Customization>,
}

impl MenuItem {
    /// "one masala dosa", "two masala dosas".
    pub fn spoken(&self, quantity: u32) -> String {
        let name = if quantity == 1 {
            &self.name
        } else {
            &self.plural
        };
        format!("{} {name}", crate::words::spoken_count(quantity))
    }

    /// The customization called `name` (canonical name), if the item offers it.
    pub fn customization(&self, name: &str) -> Option<&Customization> {
        self.customizations.iter().find(|c| c.name == name)
    }
}

/// The restaurant as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    /// Name spoken in the greeting.
    pub restaurant_name: String,
    /// Promised delivery time, minutes.
    pub delivery_minutes: u32,
    /// Promised pickup time, minutes.
    pub pickup_minutes: u32,
    /// The items, in menu order.
    pub items: Vec<MenuItem>,
}

fn phrase(text: &str) -> Phrase {
    words(text).into_iter().map(|w| w.norm).collect()
}

/// The caller phrases for a customization: its name and aliases, and the usual ways of
/// saying "no X" ("without X") and "extra X" ("more X").
fn customization_phrases(name: &str, aliases: &[String]) -> Vec<Phrase> {
    let mut phrases: Vec<Phrase> = Vec::new();
    let mut push = |p: Phrase| {
        if !p.is_empty() && !phrases.contains(&p) {
            phrases.push(p);
        }
    };
    for text in std::iter::once(name).chain(aliases.iter().map(String::as_str)) {
        let p = phrase(text);
        match p.first().map(String::as_str) {
            Some("no") if p.len() > 1 => {
                for lead in [
                    &["without"][..],
                    &["without", "any"],
                    &["no"],
                    &["hold", "the"],
                ] {
                    push(
                        lead.iter()
                            .map(|w| w.to_string())
                            .chain(p[1..].to_vec())
                            .collect(),
                    );
                }
            }
            Some("extra") if p.len() > 1 => {
                for lead in [&["extra"][..], &["more"], &["with", "extra"]] {
                    push(
                        lead.iter()
                            .map(|w| w.to_string())
                            .chain(p[1..].to_vec())
                            .collect(),
                    );
                }
            }
            _ => push(p),
        }
    }
    phrases
}

impl Menu {
    /// Reads the tenant's plugin configuration (`config_json` from call-started).
    pub fn from_config_json(config_json: &str) -> Result<Menu, ConfigError> {
        let raw: RawConfig =
            serde_json::from_str(config_json).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let raw_items = raw.menu.unwrap_or_default();
        if raw_items.is_empty() {
            return Err(ConfigError::NoMenu);
        }
        if raw_items.len() > MAX_MENU_ITEMS {
            return Err(ConfigError::TooManyItems(raw_items.len()));
        }
        let mut items: Vec<MenuItem> = Vec::with_capacity(raw_items.len());
        for (index, raw) in raw_items.into_iter().enumerate() {
            let problem = |problem: &str| ConfigError::Item {
                index,
                problem: problem.to_string(),
            };
            let id = raw.id.trim().to_string();
            let name = raw.name.trim().to_string();
            if id.is_empty() {
                return Err(problem("`id` is empty"));
            }
            if phrase(&name).is_empty() {
                return Err(problem("`name` has no words"));
            }
            if raw.price_inr == 0 || raw.price_inr > MAX_PRICE_INR {
                return Err(problem(&format!(
                    "`price_inr` must be 1 to {MAX_PRICE_INR}"
                )));
            }
            if items.iter().any(|item| item.id == id) {
                return Err(ConfigError::DuplicateId(id));
            }
            let plural = raw
                .plural
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| plural_of(&name));
            let mut phrases: Vec<Phrase> = Vec::new();
            for text in [&name, &plural].into_iter().chain(raw.aliases.iter()) {
                let p = phrase(text);
                if p.is_empty() {
                    return Err(problem("an alias has no words"));
                }
                if !phrases.contains(&p) {
                    phrases.push(p);
                }
            }
            let mut customizations: Vec<Customization> = Vec::new();
            for custom in raw.customizations {
                let (name, aliases, group) = match custom {
                    RawCustomization::Name(name) => (name, Vec::new(), None),
                    RawCustomization::Detailed {
                        name,
                        aliases,
                        group,
                    } => (name, aliases, group),
                };
                let name = name.trim().to_string();
                if phrase(&name).is_empty() {
                    return Err(problem("a customization has no words"));
                }
                if customizations.iter().any(|c| c.name == name) {
                    return Err(problem(&format!("customization `{name}` is listed twice")));
                }
                customizations.push(Customization {
                    phrases: customization_phrases(&name, &aliases),
                    name,
                    group: group
                        .map(|g| g.trim().to_string())
                        .filter(|g| !g.is_empty()),
                });
            }
            items.push(MenuItem {
                id,
                name,
                plural,
                price_inr: raw.price_inr,
                veg: raw.veg,
                phrases,
                customizations,
            });
        }
        let restaurant_name = raw
            .restaurant_name
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| DEFAULT_RESTAURANT_NAME.to_string());
        Ok(Menu {
            restaurant_name,
            delivery_minutes: raw.delivery_minutes.unwrap_or(45).clamp(1, 600),
            pickup_minutes: raw.pickup_minutes.unwrap_or(20).clamp(1, 600),
            items,
        })
    }

    /// The item with this id.
    pub fn item_by_id(&self, id: &str) -> Option<usize> {
        self.items.iter().position(|item| item.id == id)
    }

    /// "masala dosa, paneer tikka and mango lassi".
    pub fn item_names(&self) -> String {
        let names: Vec<&str> = self.items.iter().map(|i| i.name.as_str()).collect();
        and_list(&names)
    }

    /// "masala dosa 120 rupees, mango lassi 90 rupees".
    pub fn priced_list(&self) -> String {
        let entries: Vec<String> = self
            .items
            .iter()
            .map(|i| format!("{} {} rupees", i.name, i.price_inr))
            .collect();
        entries.join(", ")
    }

    /// The best item match starting at word `at`: item index and words used. Longer phrases
    /// win, then closer spellings. Spellings within a small edit distance count, so that
    /// whisper's "pane tikka" still finds "paneer tikka" ("chicken virani": "chicken biryani"),
    /// and so does a word whisper split in two ("bir yani").
    pub fn match_item_at(&self, n: &[&str], at: usize) -> Option<(usize, usize)> {
        // (item, phrase words, distance, words used)
        let mut best: Option<(usize, usize, usize, usize)> = None;
        for (index, item) in self.items.iter().enumerate() {
            for phrase in &item.phrases {
                let Some((distance, used)) = phrase_distance(n, at, phrase) else {
                    continue;
                };
                let better = best.is_none_or(|(_, len, d, _)| {
                    phrase.len() > len || (phrase.len() == len && distance < d)
                });
                if better {
                    best = Some((index, phrase.len(), distance, used));
                }
            }
        }
        best.map(|(index, _, _, used)| (index, used))
    }

    /// Every customization phrase of any item that starts at word `at`: (canonical name,
    /// words used), longest first.
    pub fn match_customization_at(&self, n: &[&str], at: usize) -> Option<(String, usize)> {
        let mut best: Option<(String, usize)> = None;
        for item in &self.items {
            for custom in &item.customizations {
                for phrase in &custom.phrases {
                    let fits = n.len() >= at + phrase.len()
                        && phrase
                            .iter()
                            .zip(&n[at..])
                            .all(|(p, w)| p == w || singular(w) == p.as_str());
                    if fits && best.as_ref().is_none_or(|(_, len)| phrase.len() > *len) {
                        best = Some((custom.name.clone(), phrase.len()));
                    }
                }
            }
        }
        best
    }
}

/// "a", "a and b", "a, b and c".
pub fn and_list<S: AsRef<str>>(parts: &[S]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        [init @ .., last] => {
            let init: Vec<&str> = init.iter().map(AsRef::as_ref).collect();
            format!("{} and {}", init.join(", "), last.as_ref())
        }
    }
}

/// English plural of a name's last word: "curry" → "curries", "sandwich" → "sandwiches",
/// "dosa" → "dosas"; a name ending in "s" stays.
pub(crate) fn plural_of(name: &str) -> String {
    let lower = name.to_lowercase();
    let before_y = lower.chars().rev().nth(1);
    if lower.ends_with('y') && before_y.is_some_and(|c| !"aeiou".contains(c)) {
        format!("{}ies", &name[..name.len() - 1])
    } else if lower.ends_with('s') {
        name.to_string()
    } else if ["x", "z", "ch", "sh"]
        .iter()
        .any(|end| lower.ends_with(end))
    {
        format!("{name}es")
    } else {
        format!("{name}s")
    }
}

/// "dosas" → "dosa", "samosas" → "samosa" (only a trailing "s"; short words stay).
fn singular(word: &str) -> &str {
    if word.len() > 3 && word.ends_with('s') && !word.ends_with("ss") {
        &word[..word.len() - 1]
    } else {
        word
    }
}

/// Everyday words that are a letter away from a dish name but are never meant as one
/// ("carry" is not "curry").
const NOT_FUZZY: &[&str] = &[
    "carry", "carries", "chair", "chat", "char", "soap", "soul", "sour", "dose", "lasso", "lady",
    "tikki", "none", "noon", "than", "then",
];

/// Edit distance allowed for a phrase of `len` characters.
fn allowed_distance(len: usize) -> usize {
    match len {
        0..=3 => 0,
        4..=7 => 1,
        8..=12 => 2,
        _ => 3,
    }
}

/// How far the words at `at` are from `phrase`, if close enough: distance and words used.
/// Exact words and plurals cost nothing. Otherwise the spelling distance of the whole phrase
/// must be small, and the first letters must agree or one of several words must be exact; the
/// words may also be one more than the phrase's (whisper split a word), compared without
/// spaces.
fn phrase_distance(n: &[&str], at: usize, phrase: &[String]) -> Option<(usize, usize)> {
    let candidate = n.get(at..at + phrase.len())?;
    if candidate
        .iter()
        .zip(phrase)
        .all(|(w, p)| *w == p.as_str() || singular(w) == p.as_str())
    {
        return Some((0, phrase.len()));
    }
    let wanted = phrase.join(" ");
    let allowed = allowed_distance(wanted.chars().count());
    if allowed == 0 || candidate.iter().any(|w| NOT_FUZZY.contains(w)) {
        return None;
    }
    // Every word starts with the right letter, or (for several words) one word is exact:
    // "pane tikka", "chicken virani".
    let same_initials = candidate
        .iter()
        .zip(phrase)
        .all(|(w, p)| w.chars().next() == p.chars().next());
    let one_exact = phrase.len() > 1
        && candidate
            .iter()
            .zip(phrase)
            .any(|(w, p)| *w == p.as_str() || singular(w) == p.as_str());
    if same_initials || one_exact {
        let said = candidate.join(" ");
        let distance = edit_distance(&said, &wanted).min(edit_distance(singular(&said), &wanted));
        if distance <= allowed {
            return Some((distance.max(1), phrase.len()));
        }
    }
    // A word split in two: "bir yani" for "biryani".
    let split = n.get(at..at + phrase.len() + 1)?;
    if split.first().and_then(|w| w.chars().next()) != wanted.chars().next() {
        return None;
    }
    let said: String = split.concat();
    let wanted: String = phrase.concat();
    let distance = edit_distance(&said, &wanted).min(edit_distance(singular(&said), &wanted));
    (distance <= allowed).then_some((distance.max(1), phrase.len() + 1))
}
