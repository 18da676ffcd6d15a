//! The restaurant line: takes a food order by voice (rule-based, for the embedded offline
//! engines: whisper tiny.en hears the caller, espeak-ng speaks).
//!
//! The menu comes from the tenant's plugin configuration (see [`menu`]); a missing or bad
//! menu gets an apology and a hang-up, and the error is logged.
//!
//! The conversation: a greeting (by name for a returning caller, offering "the same as last
//! time" when caller memory holds an earlier order), then items with counts and
//! customizations ("two masala dosas and one mango lassi", "make it spicy", "without onion")
//! until "that's all"; delivery or pickup; the address for a delivery (offering last time's);
//! the caller's name if it is not known; then the order is read back with its total and placed
//! on a yes. A no lets the caller correct it ("no, remove the lassi", "make it three dosas",
//! "pickup instead"). Something not on the menu gets the list of what is. A placed order is
//! submitted as the `order` extraction and saved in caller memory (`last_order`), then the
//! line says goodbye and hangs up.
//!
//! Keys: 0 reads the menu with prices, * repeats the question; at the read-back 1 places the
//! order and 2 changes it; for delivery or pickup 1 and 2. Silence repeats the question once,
//! then the line says goodbye.

pub mod menu;
pub mod order;
pub mod parse;
mod words;

use serde::Serialize;
use vaani_plugin_sdk::*;

use menu::Menu;
use order::{OrderLine, OrderedItem, Request};
use parse::Fulfilment;
use words::Word;

/// Id of the extraction schema a placed order is submitted against.
pub const ORDER_SCHEMA: &str = "order";

/// Said when the tenant's menu configuration is missing or unusable.
pub const CONFIG_APOLOGY: &str =
    "Sorry, we cannot take orders on this line right now. Please call again later. Goodbye.";
const ORDER_QUESTION: &str = "What would you like to order?";
const MORE_QUESTION: &str = "Anything else?";
const FULFILMENT_QUESTION: &str = "Is that for delivery or pickup?";
const ADDRESS_QUESTION: &str = "What is the delivery address?";
const NAME_QUESTION: &str = "May I have your name, please?";
const CHANGE_QUESTION: &str = "What would you like to change?";
const MENU_HINT: &str = "Press 0 at any time to hear the menu.";
const NOT_UNDERSTOOD: &str = "Sorry, I didn't catch that.";
const NOTHING_ORDERED: &str = "You haven't ordered anything yet.";
const CHANGE_HELP: &str =
    "You can remove an item, change how many, or switch between delivery and pickup.";
const CANCELLED: &str = "Okay, I have cancelled the order. Thank you for calling. Goodbye.";
const STILL_THERE: &str = "Are you still there?";
const SILENT_GOODBYE: &str =
    "I haven't heard anything, so I will end the call now. Please call again. Goodbye.";
const PLACE_FAILED: &str = "Sorry, I could not place your order. Please call again later. Goodbye.";

/// Where the caller is in the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Step {
    /// A returning caller was offered last time's order.
    Repeat,
    /// Taking items.
    #[default]
    Items,
    /// Asked: delivery or pickup?
    Fulfilment,
    /// Asked for the delivery address.
    Address,
    /// Asked for the caller's name.
    Name,
    /// The order was read back; waiting for yes or no.
    Confirm,
    /// The caller said no to the read-back; waiting for the change.
    Change,
    /// Placed, cancelled or given up; the call is ending.
    Done,
}

/// The previous order from caller memory, checked against today's menu.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PreviousOrder {
    lines: Vec<OrderLine>,
    address: Option<String>,
}

/// The `order` extraction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlacedOrder {
    /// What was ordered.
    pub items: Vec<OrderedItem>,
    /// "delivery" or "pickup".
    pub fulfilment: &'static str,
    /// Delivery address in the caller's words (delivery only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The caller's name, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    /// Caller number.
    pub caller: String,
    /// Sum of quantity × unit price, rupees.
    pub total_inr: u32,
    /// Always "INR".
    pub currency: &'static str,
}

/// The restaurant plugin.
#[derive(Default)]
pub struct Restaurant {
    menu: Option<Menu>,
    step: Step,
    lines: Vec<OrderLine>,
    /// The line the caller last ordered or changed ("make it spicy" applies to it).
    last_line: Option<usize>,
    fulfilment: Option<Fulfilment>,
    address: Option<String>,
    customer_name: Option<String>,
    /// The name question went unanswered twice: the order goes without a name.
    name_skipped: bool,
    caller: String,
    previous: Option<PreviousOrder>,
    /// Last time's address was offered for this delivery.
    offering_address: bool,
    /// Answers to the current question that were not understood.
    misses: u8,
    /// Silence timeouts since the caller last said or pressed anything.
    silences: u8,
}

/// Last time's order from caller memory `{"last_order": {"items": [...], "address": ...}}`,
/// keeping only what today's menu still has.
fn previous_order(menu: &Menu, ctx: &CallerContext) -> Option<PreviousOrder> {
    let memory = ctx.memory()?;
    let last = memory.get("last_order")?;
    let mut lines: Vec<OrderLine> = Vec::new();
    for entry in last.get("items")?.as_array()?.iter().take(order::MAX_LINES) {
        let Some(item) = entry
            .get("item_id")
            .and_then(Value::as_str)
            .and_then(|id| menu.item_by_id(id))
        else {
            continue;
        };
        let quantity = entry
            .get("quantity")
            .and_then(Value::as_u64)
            .map_or(1, |q| q.clamp(1, u64::from(order::MAX_QUANTITY)) as u32);
        let mut line = OrderLine {
            item,
            quantity,
            customizations: Vec::new(),
        };
        for custom in entry
            .get("customizations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            order::customize(menu, &mut line, custom);
        }
        lines.push(line);
    }
    if lines.is_empty() {
        return None;
    }
    let address = last
        .get("address")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|a| !a.is_empty() && a.len() <= 300)
        .map(str::to_string);
    Some(PreviousOrder { lines, address })
}

impl Restaurant {
    fn menu(&self) -> Result<&Menu> {
        self.menu
            .as_ref()
            .ok_or_else(|| Error::invalid_state("the restaurant has no menu"))
    }

    /// The question for the current step.
    fn prompt(&self) -> Result<String> {
        let menu = self.menu()?;
        Ok(match self.step {
            Step::Repeat => match &self.previous {
                Some(previous) => format!(
                    "Would you like the same as last time: {}?",
                    order::spoken_order(menu, &previous.lines)
                ),
                None => ORDER_QUESTION.to_string(),
            },
            Step::Items if self.lines.is_empty() => ORDER_QUESTION.to_string(),
            Step::Items => MORE_QUESTION.to_string(),
            Step::Fulfilment => FULFILMENT_QUESTION.to_string(),
            Step::Address => match (&self.previous, self.offering_address) {
                (
                    Some(PreviousOrder {
                        address: Some(a), ..
                    }),
                    true,
                ) => {
                    format!("Shall we deliver to {a} again?")
                }
                _ => ADDRESS_QUESTION.to_string(),
            },
            Step::Name => NAME_QUESTION.to_string(),
            Step::Confirm => self.read_back()?,
            Step::Change => CHANGE_QUESTION.to_string(),
            Step::Done => String::new(),
        })
    }

    /// "That's two masala dosas and one mango lassi, for delivery to …, in the name of
    /// Priya. The total is 330 rupees. Shall I place the order?"
    fn read_back(&self) -> Result<String> {
        let menu = self.menu()?;
        let mut text = format!("That's {}", order::spoken_order(menu, &self.lines));
        match (self.fulfilment, &self.address) {
            (Some(Fulfilment::Delivery), Some(address)) => {
                text.push_str(&format!(", for delivery to {address}"));
            }
            (Some(Fulfilment::Delivery), None) => text.push_str(", for delivery"),
            (Some(Fulfilment::Pickup), _) => text.push_str(", for pickup"),
            (None, _) => {}
        }
        if let Some(name) = &self.customer_name {
            text.push_str(&format!(", in the name of {name}"));
        }
        text.push_str(&format!(
            ". The total is {} rupees. Shall I place the order?",
            order::total_inr(menu, &self.lines)
        ));
        Ok(text)
    }

    /// Says `lead` (if any) and the current question in one breath.
    fn ask_after(&mut self, call: &mut Call, lead: &str) -> Result {
        let prompt = self.prompt()?;
        let text = [lead.trim(), prompt.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        if !text.is_empty() {
            call.say(text)?;
        }
        Ok(())
    }

    /// The step that comes next for what is known so far.
    fn next_step(&self) -> Step {
        if self.lines.is_empty() {
            Step::Items
        } else if self.fulfilment.is_none() {
            Step::Fulfilment
        } else if self.fulfilment == Some(Fulfilment::Delivery) && self.address.is_none() {
            Step::Address
        } else if self.customer_name.is_none() && !self.name_skipped {
            Step::Name
        } else {
            Step::Confirm
        }
    }

    /// Moves on to whatever is missing and asks it, after `lead`.
    fn advance(&mut self, call: &mut Call, lead: &str) -> Result {
        let next = self.next_step();
        if next != self.step {
            self.misses = 0;
        }
        if next == Step::Address && self.step != Step::Address {
            self.offering_address = self.previous.as_ref().is_some_and(|p| p.address.is_some());
        }
        self.step = next;
        self.ask_after(call, lead)
    }

    /// An answer that was not understood: say so and ask again; on the second miss in a
    /// row at the item question, list the menu.
    fn missed(&mut self, call: &mut Call) -> Result {
        self.misses = self.misses.saturating_add(1);
        let mut lead = NOT_UNDERSTOOD.to_string();
        match self.step {
            Step::Items | Step::Repeat if self.misses >= 2 => {
                lead.push_str(&format!(" We have {}.", self.menu()?.item_names()));
            }
            Step::Change => {
                lead.push(' ');
                lead.push_str(CHANGE_HELP);
            }
            Step::Name if self.misses >= 2 => {
                // Go on without a name rather than keep asking.
                self.name_skipped = true;
                return self.advance(call, "");
            }
            _ => {}
        }
        self.ask_after(call, &lead)
    }

    fn set_name(&mut self, call: &mut Call, name: String) -> Result {
        if self.customer_name.as_deref() != Some(name.as_str()) {
            call.set_caller_name(&name)?;
            self.customer_name = Some(name);
        }
        Ok(())
    }

    /// Applies what an utterance says about items. Returns what to tell the caller
    /// ("Added two masala dosas.") and whether anything changed.
    fn take_items(&mut self, request: &Request, correcting: bool) -> Result<(String, bool)> {
        let Some(menu) = self.menu.as_ref() else {
            return Err(Error::invalid_state("the restaurant has no menu"));
        };
        let mut added: Vec<String> = Vec::new();
        let mut updated: Vec<String> = Vec::new();
        let mut removed: Vec<String> = Vec::new();
        let mut changed = false;
        for mention in &request.items {
            // "No sugar in the coffee" changes the coffee already ordered.
            let correcting = correcting
                || (mention.quantity.is_none()
                    && !mention.adding
                    && !mention.customizations.is_empty()
                    && self.lines.iter().any(|l| l.item == mention.item));
            let before = self.lines.clone();
            let touched = order::apply(menu, &mut self.lines, mention, correcting);
            if self.lines == before {
                continue;
            }
            changed = true;
            let item = &menu.items[mention.item];
            if mention.removing {
                removed.push(match mention.quantity.filter(|q| *q > 0) {
                    Some(q) => item.spoken(q),
                    None => format!("the {}", item.name),
                });
                self.last_line = None;
            } else if let Some(index) = touched {
                self.last_line = Some(index);
                let line = &self.lines[index];
                if correcting && !mention.adding {
                    updated.push(order::spoken_line(menu, line));
                } else {
                    let said = OrderLine {
                        quantity: mention.quantity.unwrap_or(1).clamp(1, order::MAX_QUANTITY),
                        ..line.clone()
                    };
                    added.push(order::spoken_line(menu, &said));
                }
            }
        }
        // "Make it spicy": the line just ordered, else the latest line that offers it.
        for custom in &request.loose_customizations {
            let target = self
                .last_line
                .filter(|&i| i < self.lines.len())
                .filter(|&i| {
                    menu.items[self.lines[i].item]
                        .customization(custom)
                        .is_some()
                })
                .or_else(|| {
                    self.lines
                        .iter()
                        .rposition(|l| menu.items[l.item].customization(custom).is_some())
                });
            if let Some(index) = target {
                let before = self.lines[index].clone();
                order::customize(menu, &mut self.lines[index], custom);
                if self.lines[index] != before {
                    changed = true;
                    updated.push(order::spoken_line(menu, &self.lines[index]));
                }
            }
        }
        let mut parts: Vec<String> = Vec::new();
        if !added.is_empty() {
            parts.push(format!("Added {}.", menu::and_list(&added)));
        }
        if !updated.is_empty() {
            parts.push(format!("Okay, {}.", menu::and_list(&updated)));
        }
        if !removed.is_empty() {
            parts.push(format!("Removed {}.", menu::and_list(&removed)));
        }
        Ok((parts.join(" "), changed))
    }

    /// "Make it three": a new count for the line just ordered. Returns what to tell the caller.
    fn new_count(&mut self, words: &[Word]) -> Result<Option<String>> {
        let Some(count) = parse::new_count(words) else {
            return Ok(None);
        };
        let Some(index) = self.last_line.filter(|&i| i < self.lines.len()) else {
            return Ok(None);
        };
        self.lines[index].quantity = count.clamp(1, order::MAX_QUANTITY);
        let line = order::spoken_line(self.menu()?, &self.lines[index]);
        Ok(Some(format!("Okay, {line}.")))
    }

    /// Corrections at the read-back or after "no": items, counts, customizations,
    /// delivery or pickup, name and address. Returns whether anything changed.
    fn correct(&mut self, call: &mut Call, text: &str, words: &[Word]) -> Result<bool> {
        let request = order::request(self.menu()?, words);
        let (_, mut changed) = self.take_items(&request, true)?;
        if request.items.is_empty() && self.new_count(words)?.is_some() {
            changed = true;
        }
        if let Some(wanted) = corrected_fulfilment(words)
            && self.fulfilment != Some(wanted)
        {
            self.fulfilment = Some(wanted);
            if wanted == Fulfilment::Pickup {
                self.address = None;
            }
            changed = true;
        }
        let n = words::norms(words);
        if (words::contains_phrase(&n, "address") || words::contains_phrase(&n, "deliver to"))
            && let Some(address) = parse::address(text, words)
        {
            self.address = Some(address);
            self.fulfilment = Some(Fulfilment::Delivery);
            changed = true;
        }
        if let Some(name) = parse::name(words, false)
            && self.customer_name.as_deref() != Some(name.as_str())
        {
            self.set_name(call, name)?;
            changed = true;
        }
        Ok(changed)
    }

    fn place(&mut self, call: &mut Call) -> Result {
        let menu = self.menu()?;
        let (Some(fulfilment), false) = (self.fulfilment, self.lines.is_empty()) else {
            return self.advance(call, "");
        };
        let placed = PlacedOrder {
            items: order::ordered_items(menu, &self.lines),
            fulfilment: fulfilment.id(),
            address: match fulfilment {
                Fulfilment::Delivery => self.address.clone(),
                Fulfilment::Pickup => None,
            },
            customer_name: self.customer_name.clone(),
            caller: self.caller.clone(),
            total_inr: order::total_inr(menu, &self.lines),
            currency: "INR",
        };
        let summary = order::spoken_order(menu, &self.lines);
        let goodbye = match fulfilment {
            Fulfilment::Delivery => format!(
                "Your order is placed. It will be delivered in about {} minutes. Goodbye.",
                menu.delivery_minutes
            ),
            Fulfilment::Pickup => format!(
                "Your order is placed. It will be ready for pickup in about {} minutes. Goodbye.",
                menu.pickup_minutes
            ),
        };
        self.step = Step::Done;
        if let Err(error) = call.extract(ORDER_SCHEMA, &placed) {
            call.log(
                LogLevel::Error,
                format!("the order extraction was refused: {error}"),
            );
            call.say(PLACE_FAILED)?;
            call.hangup();
            return Ok(());
        }
        let items: Vec<Value> = placed
            .items
            .iter()
            .map(|i| {
                json!({
                    "item_id": i.item_id,
                    "quantity": i.quantity,
                    "customizations": i.customizations,
                })
            })
            .collect();
        let mut last_order = json!({
            "items": items,
            "summary": summary,
            "fulfilment": placed.fulfilment,
            "total_inr": placed.total_inr,
        });
        if let Some(address) = &placed.address {
            last_order["address"] = json!(address);
        }
        call.set_memory(&json!({ "last_order": last_order }))?;
        let thanks = match &self.customer_name {
            Some(name) => format!("Thank you, {name}."),
            None => "Thank you.".to_string(),
        };
        call.say(format!("{thanks} {goodbye}"))?;
        call.hangup();
        Ok(())
    }

    fn finish(&mut self, call: &mut Call, text: &str) -> Result {
        self.step = Step::Done;
        call.say(text)?;
        call.hangup();
        Ok(())
    }

    fn on_speech(&mut self, call: &mut Call, text: &str) -> Result {
        let words = words::words(text);
        if words.is_empty() || self.step == Step::Done || self.menu.is_none() {
            return Ok(());
        }
        self.silences = 0;
        if parse::cancels_order(&words) {
            return self.finish(call, CANCELLED);
        }
        if parse::wants_menu(&words) && !matches!(self.step, Step::Address | Step::Name) {
            let lead = format!("We have {}.", self.menu()?.priced_list());
            return self.ask_after(call, &lead);
        }
        let mut named = false;
        if !matches!(self.step, Step::Name | Step::Confirm | Step::Change)
            && let Some(name) = parse::name(&words, false)
        {
            self.set_name(call, name)?;
            named = true;
        }
        match self.step {
            Step::Done => Ok(()),
            Step::Repeat => self.on_repeat_answer(call, &words),
            Step::Items => self.on_items(call, &words),
            Step::Fulfilment => {
                let request = order::request(self.menu()?, &words);
                let (ack, changed) = self.take_items(&request, parse::corrects(&words))?;
                match parse::fulfilment(&words) {
                    Some(f) => {
                        self.fulfilment = Some(f);
                        self.advance(call, &ack)
                    }
                    None if changed => self.ask_after(call, &ack),
                    // An address for an answer means delivery there.
                    None if parse::looks_like_address(&words) => {
                        self.fulfilment = Some(Fulfilment::Delivery);
                        self.address = parse::address(text, &words);
                        self.advance(call, "")
                    }
                    None => self.missed(call),
                }
            }
            // "My name is Priya" is no address: ask for it again.
            Step::Address if named && !parse::looks_like_address(&words) => {
                self.ask_after(call, "")
            }
            Step::Address => self.on_address(call, text, &words),
            Step::Name => match parse::name(&words, true) {
                Some(name) => {
                    self.set_name(call, name)?;
                    self.advance(call, "")
                }
                None => self.missed(call),
            },
            Step::Confirm => {
                let changed = self.correct(call, text, &words)?;
                if changed {
                    return self.advance(call, "Okay.");
                }
                match parse::yes_no(&words) {
                    Some(true) => self.place(call),
                    Some(false) => {
                        self.step = Step::Change;
                        self.misses = 0;
                        self.ask_after(call, "")
                    }
                    None => self.missed(call),
                }
            }
            Step::Change => {
                if self.correct(call, text, &words)? {
                    return self.advance(call, "Okay.");
                }
                if parse::done_ordering(&words) || parse::yes_no(&words) == Some(true) {
                    return self.advance(call, "");
                }
                self.missed(call)
            }
        }
    }

    fn on_repeat_answer(&mut self, call: &mut Call, words: &[Word]) -> Result {
        let n = words::norms(words);
        let same = words::contains_phrase(&n, "same")
            || words::contains_phrase(&n, "again")
            || words::contains_phrase(&n, "repeat");
        let answer = parse::yes_no(words);
        let request = order::request(self.menu()?, words);
        if answer != Some(false) && (answer == Some(true) || same) {
            if let Some(previous) = &self.previous {
                self.lines = previous.lines.clone();
                self.last_line = self.lines.len().checked_sub(1);
            }
            let (ack, _) = self.take_items(&request, false)?;
            self.step = Step::Items;
            self.misses = 0;
            return if parse::done_ordering(words) {
                self.advance(call, &ack)
            } else {
                self.ask_after(call, &format!("Great. {ack}"))
            };
        }
        if !request.items.is_empty() || answer == Some(false) {
            self.step = Step::Items;
            self.misses = 0;
            if !request.items.is_empty() {
                return self.on_items(call, words);
            }
            self.offering_address = false;
            return self.ask_after(call, "Okay.");
        }
        self.missed(call)
    }

    fn on_items(&mut self, call: &mut Call, words: &[Word]) -> Result {
        let request = order::request(self.menu()?, words);
        let (ack, changed) = self.take_items(&request, parse::corrects(words))?;
        let done = parse::done_ordering(words);
        if let Some(f) = parse::fulfilment(words) {
            self.fulfilment = Some(f);
        }
        if changed || (done && !self.lines.is_empty()) {
            self.misses = 0;
            return if done || self.fulfilment.is_some() {
                self.advance(call, &ack)
            } else {
                self.ask_after(call, &ack)
            };
        }
        if done {
            return self.ask_after(call, NOTHING_ORDERED);
        }
        if request.items.is_empty()
            && let Some(ack) = self.new_count(words)?
        {
            return self.ask_after(call, &ack);
        }
        if !request.loose_customizations.is_empty() {
            return self.ask_after(call, "Sorry, that option is not available for your order.");
        }
        if let Some(dish) = &request.unknown {
            let lead = format!(
                "Sorry, we don't have {dish}. We have {}.",
                self.menu()?.item_names()
            );
            return self.ask_after(call, &lead);
        }
        if self.fulfilment.is_some() && !self.lines.is_empty() {
            return self.advance(call, "");
        }
        self.missed(call)
    }

    fn on_address(&mut self, call: &mut Call, text: &str, words: &[Word]) -> Result {
        if parse::fulfilment(words) == Some(Fulfilment::Pickup) {
            self.fulfilment = Some(Fulfilment::Pickup);
            self.offering_address = false;
            return self.advance(call, "Okay, pickup.");
        }
        if self.offering_address {
            match parse::yes_no(words) {
                Some(true) => {
                    self.address = self.previous.as_ref().and_then(|p| p.address.clone());
                    self.offering_address = false;
                    return self.advance(call, "");
                }
                Some(false) => {
                    self.offering_address = false;
                    // "No, 5 Park Street" gives the new address at once.
                    if let Some(address) = parse::address(text, words)
                        && words.len() > 2
                    {
                        self.address = Some(address);
                        return self.advance(call, "");
                    }
                    return self.ask_after(call, "");
                }
                None => self.offering_address = false,
            }
        }
        match parse::address(text, words) {
            Some(address) => {
                self.address = Some(address);
                self.advance(call, "")
            }
            None => self.missed(call),
        }
    }
}

/// Delivery or pickup in a correction: the later one said wins ("not delivery, pickup"); one
/// alone right after "not" means the other.
fn corrected_fulfilment(words: &[Word]) -> Option<Fulfilment> {
    let said = parse::fulfilment(words)?;
    let n = words::norms(words);
    let (delivery, pickup) = (
        ["delivery", "deliver", "delivered"]
            .iter()
            .filter_map(|p| n.iter().rposition(|w| w == p))
            .max(),
        ["pickup", "pick", "collect", "takeaway"]
            .iter()
            .filter_map(|p| n.iter().rposition(|w| w == p))
            .max(),
    );
    match (delivery, pickup) {
        (Some(d), Some(p)) => Some(if d > p {
            Fulfilment::Delivery
        } else {
            Fulfilment::Pickup
        }),
        (Some(at), None) | (None, Some(at)) => {
            let negated = at > 0 && matches!(n[at - 1], "not" | "no") && !words[at - 1].ends_clause;
            Some(match (said, negated) {
                (f, false) => f,
                (Fulfilment::Delivery, true) => Fulfilment::Pickup,
                (Fulfilment::Pickup, true) => Fulfilment::Delivery,
            })
        }
        (None, None) => Some(said),
    }
}

impl Plugin for Restaurant {
    fn name() -> &'static str {
        "restaurant"
    }

    fn version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    fn schemas() -> Vec<Schema> {
        vec![schema(
            ORDER_SCHEMA,
            "A food order taken by phone",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "required": ["items", "fulfilment", "caller", "total_inr", "currency"],
                "additionalProperties": false,
                "properties": {
                    "items": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": order::MAX_LINES,
                        "items": {
                            "type": "object",
                            "required": ["item_id", "name", "quantity", "unit_price_inr", "customizations"],
                            "additionalProperties": false,
                            "properties": {
                                "item_id": { "type": "string", "minLength": 1 },
                                "name": { "type": "string", "minLength": 1 },
                                "quantity": { "type": "integer", "minimum": 1, "maximum": order::MAX_QUANTITY },
                                "unit_price_inr": { "type": "integer", "minimum": 1, "maximum": menu::MAX_PRICE_INR },
                                "veg": { "type": "boolean" },
                                "customizations": { "type": "array", "items": { "type": "string", "minLength": 1 } }
                            }
                        }
                    },
                    "fulfilment": { "enum": ["delivery", "pickup"] },
                    "address": { "type": "string", "minLength": 1, "maxLength": 300 },
                    "customer_name": { "type": "string", "minLength": 1, "maxLength": 200 },
                    "caller": { "type": "string" },
                    "total_inr": { "type": "integer", "minimum": 0 },
                    "currency": { "const": "INR" }
                },
                "if": { "properties": { "fulfilment": { "const": "delivery" } } },
                "then": { "required": ["address"] }
            }),
        )]
    }

    fn on_call_started(&mut self, call: &mut Call, ctx: &CallerContext) -> Result {
        self.caller = ctx.caller.clone();
        let menu = match Menu::from_config_json(&ctx.config_json) {
            Ok(menu) => menu,
            Err(error) => {
                call.log(
                    LogLevel::Error,
                    format!("restaurant plugin configuration: {error}"),
                );
                return self.finish(call, CONFIG_APOLOGY);
            }
        };
        self.customer_name = ctx
            .caller_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        self.previous = previous_order(&menu, ctx);
        let restaurant = menu.restaurant_name.clone();
        self.menu = Some(menu);
        let greeting = match (
            &self.customer_name,
            ctx.previous_calls > 0 || self.previous.is_some(),
        ) {
            (Some(name), _) => format!("Welcome back to {restaurant}, {name}."),
            (None, true) => format!("Welcome back to {restaurant}."),
            (None, false) => format!("Welcome to {restaurant}."),
        };
        self.step = if self.previous.is_some() {
            Step::Repeat
        } else {
            Step::Items
        };
        self.ask_after(call, &format!("{greeting} {MENU_HINT}"))
    }

    fn on_dtmf(&mut self, call: &mut Call, digit: char) -> Result {
        if self.step == Step::Done || self.menu.is_none() {
            return Ok(());
        }
        self.silences = 0;
        match (self.step, digit) {
            (_, '0') => {
                let lead = format!("We have {}.", self.menu()?.priced_list());
                self.ask_after(call, &lead)
            }
            (Step::Confirm, '1') => self.place(call),
            (Step::Confirm, '2') => {
                self.step = Step::Change;
                self.ask_after(call, "")
            }
            (Step::Fulfilment, '1' | '2') => {
                self.fulfilment = Some(if digit == '1' {
                    Fulfilment::Delivery
                } else {
                    Fulfilment::Pickup
                });
                self.advance(call, "")
            }
            (Step::Repeat, '1') => {
                if let Some(previous) = &self.previous {
                    self.lines = previous.lines.clone();
                    self.last_line = self.lines.len().checked_sub(1);
                }
                self.step = Step::Items;
                self.ask_after(call, "Great.")
            }
            (Step::Repeat, '2') => {
                self.step = Step::Items;
                self.ask_after(call, "")
            }
            _ => self.ask_after(call, ""),
        }
    }

    fn on_transcript(&mut self, call: &mut Call, utterance: &Utterance, is_final: bool) -> Result {
        if is_final {
            self.on_speech(call, &utterance.text)
        } else {
            Ok(())
        }
    }

    fn on_silence(&mut self, call: &mut Call, _silence_ms: u32) -> Result {
        if self.step == Step::Done || self.menu.is_none() {
            return Ok(());
        }
        self.silences = self.silences.saturating_add(1);
        if self.silences >= 2 {
            return self.finish(call, SILENT_GOODBYE);
        }
        self.ask_after(call, STILL_THERE)
    }
}

export_plugin!(Restaurant);

#[cfg(test)]
mod tests;
