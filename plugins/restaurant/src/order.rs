//! The order being taken, and what one caller utterance says about it: items with
//! quantities, customizations, removals and changes.

use serde::Serialize;

use crate::menu::{Menu, and_list};
use crate::words::{Word, count_at, norms};

/// Most of one item on one order line.
pub const MAX_QUANTITY: u32 = 50;
/// Most lines on one order.
pub const MAX_LINES: usize = 30;

/// One line of the order: an item, how many, and how it is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    /// Index into [`Menu::items`].
    pub item: usize,
    /// 1 to [`MAX_QUANTITY`].
    pub quantity: u32,
    /// Canonical customization names, in the order asked for.
    pub customizations: Vec<String>,
}

/// One item mentioned in an utterance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemMention {
    /// Index into [`Menu::items`].
    pub item: usize,
    /// The count said with it, if any ("two", "2", "a").
    pub quantity: Option<u32>,
    /// "add", "another", "more", "also": on top of what is ordered.
    pub adding: bool,
    /// "remove", "no", "without", "cancel": take it off the order.
    pub removing: bool,
    /// Customizations said with it (canonical names).
    pub customizations: Vec<String>,
}

/// What one utterance says about the order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// Items mentioned, in order.
    pub items: Vec<ItemMention>,
    /// Customizations said without an item ("make it spicy").
    pub loose_customizations: Vec<String>,
    /// Something ordered that is not on the menu ("a pizza" → "pizza").
    pub unknown: Option<String>,
}

/// Words that end a mention (looking back from an item for its count).
const SEPARATORS: &[&str] = &["and", "plus", "with", "then", "also", "or"];

/// Words that may sit between a count and its item ("two plates of dosa").
const FILLERS: &[&str] = &[
    "of",
    "the",
    "more",
    "extra",
    "additional",
    "plate",
    "plates",
    "portion",
    "portions",
    "order",
    "orders",
    "glass",
    "glasses",
    "cup",
    "cups",
    "piece",
    "pieces",
    "serving",
    "servings",
    "bowl",
    "bowls",
    "my",
    "that",
    "those",
    "these",
    "your",
    "veg",
    "nice",
    "hot",
    "cold",
    "big",
    "large",
    "small",
    "full",
    "half",
];

/// Words before an item that take it off the order.
const REMOVERS: &[&str] = &[
    "remove", "cancel", "delete", "drop", "without", "no", "not", "minus", "skip", "less",
];

/// Words before an item that add to what is ordered.
const ADDERS: &[&str] = &["add", "another", "more", "also", "additional", "extra"];

/// Words that cannot start a dish name (for "sorry, we don't have …").
const NOT_DISHES: &[&str] = &[
    "lot",
    "bit",
    "little",
    "minute",
    "moment",
    "second",
    "few",
    "question",
    "lovely",
    "nice",
    "good",
    "great",
    "very",
    "table",
    "call",
    "problem",
    "thing",
    "new",
    "different",
    "same",
];

/// Reads an utterance for items, counts, customizations and removals.
pub fn request(menu: &Menu, words: &[Word]) -> Request {
    let n = norms(words);
    let mut taken = vec![false; n.len()];
    // Customizations first: "no onion" is not the removal of an item called "onion".
    let mut customs: Vec<(usize, usize, String)> = Vec::new(); // (start, end, name)
    let mut i = 0;
    while i < n.len() {
        if let Some((name, used)) = menu.match_customization_at(&n, i) {
            taken[i..i + used].iter_mut().for_each(|t| *t = true);
            customs.push((i, i + used, name));
            i += used;
        } else {
            i += 1;
        }
    }
    let mut spans: Vec<(usize, usize, usize)> = Vec::new(); // (start, end, item)
    let mut i = 0;
    while i < n.len() {
        if !taken[i]
            && let Some((item, used)) = menu.match_item_at(&n, i)
            && !taken[i..i + used].iter().any(|t| *t)
        {
            taken[i..i + used].iter_mut().for_each(|t| *t = true);
            spans.push((i, i + used, item));
            i += used;
        } else {
            i += 1;
        }
    }

    let mut request = Request::default();
    for (k, &(start, end, item)) in spans.iter().enumerate() {
        let previous_end = if k > 0 { spans[k - 1].1 } else { 0 };
        let mut mention = ItemMention {
            item,
            quantity: None,
            adding: false,
            removing: false,
            customizations: Vec::new(),
        };
        // Walk back from the item over fillers and customizations to its count and verbs.
        let mut j = start;
        let mut adjacent = true;
        while j > previous_end {
            let w = n[j - 1];
            if words[j - 1].ends_clause || SEPARATORS.contains(&w) {
                break;
            }
            if taken[j - 1] {
                // A customization said before the item ("a spicy paneer tikka").
                j -= 1;
                adjacent = false;
                continue;
            }
            if mention.quantity.is_none() {
                if matches!(w, "to" | "too") && adjacent {
                    // whisper hears "two dosas" as "to dosas" now and then ("I'd like to
                    // dosas" is no English otherwise).
                    mention.quantity = Some(2);
                    j -= 1;
                    adjacent = false;
                    continue;
                }
                if let Some(value) = count_before(&n, previous_end, j) {
                    mention.quantity = Some(value.0);
                    if value.0 == 0 {
                        mention.removing = true;
                    }
                    if n[value.1] == "another" {
                        mention.adding = true;
                    }
                    j = value.1;
                    adjacent = false;
                    continue;
                }
            }
            if REMOVERS.contains(&w) {
                // "no"/"not"/"without" only right before the item and without a count:
                // "No two lassis" (whisper dropped the comma) changes the count.
                if !matches!(w, "no" | "not" | "without")
                    || (adjacent && mention.quantity.is_none())
                {
                    mention.removing = true;
                }
            } else if ADDERS.contains(&w) {
                mention.adding = true;
            } else if !FILLERS.contains(&w) {
                // Further back only verbs count ("please remove the lassi").
                if mention.quantity.is_none() {
                    adjacent = false;
                }
            }
            j -= 1;
        }
        let before: Vec<&str> = n[previous_end..start].to_vec();
        if contains_any(
            &before,
            &[&["dont", "want"], &["take", "out"], &["get", "rid", "of"]],
        ) {
            mention.removing = true;
        }
        let after_end = spans.get(k + 1).map_or(n.len(), |s| s.0);
        let after: Vec<&str> = n[end..after_end].to_vec();
        if matches!(after.first().copied(), Some("off" | "out")) {
            mention.removing = true;
        }
        request.items.push(mention);
    }

    // Customizations go to the item right after them ("spicy paneer tikka"), else to the
    // item before them ("dosa without onion"), else they are loose ("make it spicy").
    for (start, end, name) in customs {
        let following = spans.iter().position(|&(s, _, _)| {
            s >= end && s - end <= 2 && !n[end..s].iter().any(|w| SEPARATORS.contains(w))
        });
        let preceding = spans.iter().rposition(|&(_, e, _)| e <= start);
        match following.or(preceding) {
            Some(k) => {
                let custom = &mut request.items[k].customizations;
                if !custom.contains(&name) {
                    custom.push(name);
                }
            }
            None => {
                if !request.loose_customizations.contains(&name) {
                    request.loose_customizations.push(name);
                }
            }
        }
    }

    if request.items.is_empty() {
        request.unknown = unknown_dish(&n, words, &taken);
    }
    request
}

/// A count ending just before `end` (after `floor`): value and the index of its first word.
fn count_before(n: &[&str], floor: usize, end: usize) -> Option<(u32, usize)> {
    (floor..end).rev().take(3).find_map(|s| {
        count_at(n, s)
            .filter(|&(_, used)| s + used == end)
            .map(|(v, _)| (v, s))
    })
}

fn contains_any(n: &[&str], phrases: &[&[&str]]) -> bool {
    phrases.iter().any(|p| n.windows(p.len()).any(|w| w == *p))
}

/// "I'd like a pizza" → "pizza": the words after a count, when no menu item was found.
fn unknown_dish(n: &[&str], words: &[Word], taken: &[bool]) -> Option<String> {
    for i in 0..n.len() {
        let Some((_, used)) = count_at(n, i) else {
            continue;
        };
        let start = i + used;
        let mut end = start;
        while end < n.len()
            && end - start < 3
            && !taken[end]
            && !SEPARATORS.contains(&n[end])
            && !matches!(
                n[end],
                "please" | "for" | "to" | "thanks" | "thank" | "today"
            )
            && count_at(n, end).is_none()
        {
            let last = words[end].ends_clause;
            end += 1;
            if last {
                break;
            }
        }
        if end > start
            && !NOT_DISHES.contains(&n[start])
            && n[start..end]
                .iter()
                .all(|w| w.chars().all(char::is_alphabetic))
        {
            let dish: Vec<&str> = words[start..end].iter().map(|w| w.norm.as_str()).collect();
            return Some(dish.join(" "));
        }
    }
    None
}

/// Applies one mention to the order and returns the index of the line it touched (`None`
/// when it removed lines or changed nothing). With `correcting`, a count replaces what
/// was ordered of the item instead of adding to it.
pub fn apply(
    menu: &Menu,
    lines: &mut Vec<OrderLine>,
    mention: &ItemMention,
    correcting: bool,
) -> Option<usize> {
    if mention.removing {
        match mention.quantity.filter(|q| *q > 0) {
            // "Remove one dosa": fewer of it, from the latest lines first.
            Some(mut fewer) => {
                for index in (0..lines.len()).rev() {
                    if lines[index].item != mention.item || fewer == 0 {
                        continue;
                    }
                    let take = fewer.min(lines[index].quantity);
                    lines[index].quantity -= take;
                    fewer -= take;
                }
                lines.retain(|line| line.quantity > 0);
            }
            None => lines.retain(|line| line.item != mention.item),
        }
        return None;
    }
    let item = &menu.items[mention.item];
    let valid: Vec<String> = mention
        .customizations
        .iter()
        .filter(|c| item.customization(c).is_some())
        .cloned()
        .collect();
    let existing = lines.iter().rposition(|line| line.item == mention.item);
    if correcting
        && !mention.adding
        && let Some(index) = existing
    {
        let line = &mut lines[index];
        if let Some(quantity) = mention.quantity {
            line.quantity = quantity.clamp(1, MAX_QUANTITY);
        }
        for custom in &valid {
            customize(menu, line, custom);
        }
        // Other lines of the same item go: the caller said how many they want.
        if mention.quantity.is_some() {
            let removed_before = lines[..index]
                .iter()
                .filter(|l| l.item == mention.item)
                .count();
            let mut position = 0;
            lines.retain(|line| {
                let keep = position == index || line.item != mention.item;
                position += 1;
                keep
            });
            return Some(index - removed_before);
        }
        return Some(index);
    }
    let quantity = mention.quantity.unwrap_or(1).clamp(1, MAX_QUANTITY);
    let mut line = OrderLine {
        item: mention.item,
        quantity: 0,
        customizations: Vec::new(),
    };
    for custom in &valid {
        customize(menu, &mut line, custom);
    }
    if let Some(index) = lines
        .iter()
        .position(|l| l.item == line.item && l.customizations == line.customizations)
    {
        let same = &mut lines[index];
        same.quantity = (same.quantity + quantity).min(MAX_QUANTITY);
        return Some(index);
    }
    if lines.len() >= MAX_LINES {
        return None;
    }
    line.quantity = quantity;
    lines.push(line);
    Some(lines.len() - 1)
}

/// Adds a customization to a line; another option of the same group is replaced.
pub fn customize(menu: &Menu, line: &mut OrderLine, name: &str) -> bool {
    let item = &menu.items[line.item];
    let Some(custom) = item.customization(name) else {
        return false;
    };
    if let Some(group) = &custom.group {
        line.customizations.retain(|c| {
            item.customization(c)
                .is_none_or(|other| other.group.as_ref() != Some(group))
        });
    }
    if !line.customizations.iter().any(|c| c == name) {
        line.customizations.push(name.to_string());
    }
    true
}

/// "two masala dosas without onion" for one line.
pub fn spoken_line(menu: &Menu, line: &OrderLine) -> String {
    let mut text = menu.items[line.item].spoken(line.quantity);
    if !line.customizations.is_empty() {
        text.push_str(", ");
        text.push_str(&and_list(&line.customizations));
    }
    text
}

/// "two masala dosas and one mango lassi" for the whole order.
pub fn spoken_order(menu: &Menu, lines: &[OrderLine]) -> String {
    let parts: Vec<String> = lines.iter().map(|l| spoken_line(menu, l)).collect();
    and_list(&parts)
}

/// Total price in rupees.
pub fn total_inr(menu: &Menu, lines: &[OrderLine]) -> u32 {
    lines
        .iter()
        .map(|l| menu.items[l.item].price_inr.saturating_mul(l.quantity))
        .fold(0u32, u32::saturating_add)
}

/// One line of the `order` extraction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderedItem {
    /// Menu item id.
    pub item_id: String,
    /// Menu item name.
    pub name: String,
    /// How many.
    pub quantity: u32,
    /// Price of one, rupees.
    pub unit_price_inr: u32,
    /// Vegetarian.
    pub veg: bool,
    /// Customizations asked for.
    pub customizations: Vec<String>,
}

/// The lines as extraction records.
pub fn ordered_items(menu: &Menu, lines: &[OrderLine]) -> Vec<OrderedItem> {
    lines
        .iter()
        .map(|l| {
            let item = &menu.items[l.item];
            OrderedItem {
                item_id: item.id.clone(),
                name: item.name.clone(),
                quantity: l.quantity,
                unit_price_inr: item.price_inr,
                veg: item.veg,
                customizations: l.customizations.clone(),
            }
        })
        .collect()
}
