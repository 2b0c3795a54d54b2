//! Binding a call to a tool fn's parameters: which parameters are
//! arguments and which are injected, the `inputSchema` they make, and
//! reading the arguments so that one error names every problem at once.
//!
//! `#[mcp_tool]` cannot see traits, so it does not decide which parameters
//! are injected: for each parameter type `T` it calls
//! `(&&&&Probe::<T>::new()).__mcp_param_kind()`, and method resolution
//! picks the first of these that applies (autoref specialization, possible
//! because tool parameters are concrete types):
//!
//! 1. `T: FromToolCall`: [`Injected<T>`], taken from the call;
//! 2. `T: Deserialize + JsonSchema`: [`Argument<T>`], one property;
//! 3. only one of those two traits: an error saying which one is missing;
//! 4. neither: an error saying it is neither argument nor extractor.
//!
//! Each kind gives a slot; [`read_arguments`] fills the tool's tuple of
//! slots from the arguments object, then each kind `inject`s its value, so
//! extractors (which may take a pooled connection or check a token) only
//! run once the arguments are known to be valid.
//!
//! Reading is one pass that deserializes each argument straight into its
//! slot and only notes *that* something is off (a missing, unknown,
//! repeated or invalid argument, an ignored field). Only then does a second
//! pass, argument by argument, find *everything* that is off, for one error
//! naming it all; refusing an ignored field also waits for that pass, where
//! the published schema decides ([`ArgumentSchema::rejects_unknown_field`]).
//! The valid call, the one that matters for speed, pays for nothing else.

use std::marker::PhantomData;

use schemars::JsonSchema;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::extract::FromToolCall;
use crate::schema::{ArgumentSchema, InputSchema, Step};
use crate::tool::{CallError, StateRequirement, ToolCall};

/// What a tool's parameters make of it, collected while `#[mcp_tool]`'s
/// `tool()` describes each one: the `inputSchema`, the state the injected
/// ones need, and mistakes only visible at run time (reported at start-up).
#[derive(Default)]
pub struct Signature {
    schema: InputSchema,
    required_state: Vec<StateRequirement>,
    defects: Vec<String>,
    arguments: Vec<&'static str>,
    flattened: Option<&'static str>,
}

impl Signature {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an argument; `S` is its schema type (`U` for an `Option<U>`).
    pub fn argument<S: JsonSchema>(
        &mut self,
        name: &'static str,
        description: Option<&str>,
        required: bool,
        default: Option<Value>,
    ) {
        self.arguments.push(name);
        self.schema.param_with_default::<S>(name, description, required, default);
    }

    /// Makes `T`'s schema the whole `inputSchema` (`#[mcp(flatten)]`).
    pub fn flatten<T: JsonSchema>(&mut self, name: &'static str) {
        self.flattened = Some(name);
        if let Err(why) = self.schema.whole::<T>() {
            self.defects.push(format!(
                "`#[mcp(flatten)] {name}`: an `inputSchema` must describe an object, but {why}; flatten a struct"
            ));
        }
    }

    /// Records an injected parameter's state requirement.
    pub fn inject(&mut self, state: Option<StateRequirement>) {
        self.required_state.extend(state);
    }

    pub(crate) fn finish(mut self) -> (Map<String, Value>, Vec<StateRequirement>, Vec<String>) {
        if let Some(flattened) = self.flattened
            && !self.arguments.is_empty()
        {
            self.defects.push(format!(
                "`#[mcp(flatten)] {flattened}` takes the whole arguments object, so it must be the only argument, \
                 but {} {} read from the arguments too; move {} into `{flattened}`'s type",
                names_list(&self.arguments),
                if self.arguments.len() == 1 { "is" } else { "are" },
                if self.arguments.len() == 1 { "it" } else { "them" },
            ));
        }
        (self.schema.finish(), self.required_state, self.defects)
    }
}

/// Selects a parameter's kind by its type's traits; see the module docs.
/// `S` is the type whose schema is published (`T`, or `U` for an
/// `Option<U>`); `B` the type an error names, `T`'s element (`Hit` in
/// `Vec<Hit>`): rustc quotes a trait's message only for the type that
/// lacks it, and that is the one to fix.
pub struct Probe<T, S = T, B = S>(PhantomData<Types<T, S, B>>);

/// Only a marker: a `fn` pointer type is `Send`, `Sync` and `Copy` whatever `T` is.
type Types<T, S, B> = fn() -> (T, S, B);

impl<T, S, B> Probe<T, S, B> {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Probe(PhantomData)
    }
}

impl<T, S, B> Clone for Probe<T, S, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T, S, B> Copy for Probe<T, S, B> {}

/// The probe traits, one per rule of the module docs; the macro imports
/// them all as `_`.
pub mod probe {
    use super::*;

    pub trait InjectedProbe {
        type T;
        fn __mcp_param_kind(self) -> Injected<Self::T>;
    }

    impl<T: FromToolCall, S, B> InjectedProbe for &&&&Probe<T, S, B> {
        type T = T;
        fn __mcp_param_kind(self) -> Injected<T> {
            Injected(PhantomData)
        }
    }

    pub trait ArgumentProbe {
        type T;
        fn __mcp_param_kind(self) -> Argument<Self::T>;
    }

    impl<T: DeserializeOwned + JsonSchema, S, B> ArgumentProbe for &&&Probe<T, S, B> {
        type T = T;
        fn __mcp_param_kind(self) -> Argument<T> {
            Argument(PhantomData)
        }
    }

    /// `Deserialize` without `JsonSchema`: reports the missing schema, on
    /// the element type first (the second bound then adds nothing new).
    pub trait SchemalessProbe {
        type T;
        type B;
        fn __mcp_param_kind(self) -> Unusable<Self::T>
        where
            Self::B: ToolArgument,
            Self::T: ToolArgument;
    }

    impl<T: DeserializeOwned, S, B> SchemalessProbe for &&Probe<T, S, B> {
        type T = T;
        type B = B;
        fn __mcp_param_kind(self) -> Unusable<T>
        where
            B: ToolArgument,
            T: ToolArgument,
        {
            Unusable(PhantomData)
        }
    }

    /// `JsonSchema` without `Deserialize`: reports the missing derive.
    pub trait UndeserializableProbe {
        type T;
        type B;
        fn __mcp_param_kind(self) -> Unusable<Self::T>
        where
            Self::B: ToolArgument,
            Self::T: ToolArgument;
    }

    impl<T: JsonSchema, S, B> UndeserializableProbe for &Probe<T, S, B> {
        type T = T;
        type B = B;
        fn __mcp_param_kind(self) -> Unusable<T>
        where
            B: ToolArgument,
            T: ToolArgument,
        {
            Unusable(PhantomData)
        }
    }

    /// Neither: requires `FromToolCall`, whose message covers both roles
    /// (and whose unmet bounds, like `State<T>`'s `T: Clone`, are named).
    pub trait NeitherProbe {
        type T;
        fn __mcp_param_kind(self) -> Unusable<Self::T>
        where
            Self::T: FromToolCall;
    }

    impl<T, S, B> NeitherProbe for Probe<T, S, B> {
        type T = T;
        fn __mcp_param_kind(self) -> Unusable<T>
        where
            T: FromToolCall,
        {
            Unusable(PhantomData)
        }
    }
}

/// Bounds every argument's type must meet; asserted (with this message)
/// when a type has one of the two traits but not the other.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an MCP tool argument",
    label = "needs `serde::Deserialize` and `schemars::JsonSchema`",
    note = "derive both; `JsonSchema` must come from schemars 1.x (re-exported as `mcp_runtime::schemars`): one \
            derived with schemars 0.8 is a different trait",
    note = "or implement `mcp_runtime::FromToolCall` for it to inject it instead of reading it from the arguments"
)]
pub trait ToolArgument: DeserializeOwned + JsonSchema {}

impl<T: DeserializeOwned + JsonSchema> ToolArgument for T {}

/// What to do when an argument is absent.
pub enum Missing<T> {
    /// It is required: report it.
    Required,
    /// Use this value (`#[mcp(default)]`, or `None` for an `Option`).
    Default(fn() -> T),
}

/// A parameter injected by its [`FromToolCall`] implementation.
pub struct Injected<T>(PhantomData<fn() -> T>);

impl<T: FromToolCall> Injected<T> {
    pub fn describe<S: ?Sized>(self, sig: &mut Signature, _name: &'static str, _description: Option<&str>, _: bool) {
        sig.inject(T::required_state());
    }

    pub fn describe_default<S: ?Sized>(
        self,
        _sig: &mut Signature,
        _name: &'static str,
        _description: Option<&str>,
        _default: fn() -> T,
    ) where
        T: DefaultOnInjected,
    {
    }

    pub fn describe_flatten(self, _sig: &mut Signature, _name: &'static str)
    where
        T: FlattenOnInjected,
    {
    }

    pub fn slot(self, _missing: Missing<T>) -> NameOnly {
        NameOnly::default()
    }

    pub fn slot_whole(self) -> NameOnly {
        NameOnly::default()
    }

    pub fn inject(self, call: &ToolCall, _slot: NameOnly) -> Result<T, CallError> {
        T::from_tool_call(call)
    }
}

/// `#[mcp(default)]` on an injected parameter: never satisfied.
#[diagnostic::on_unimplemented(
    message = "`default` applies to arguments only; the injected parameter `{Self}` is never absent",
    label = "injected, not read from the arguments"
)]
pub trait DefaultOnInjected {}

/// `#[mcp(flatten)]` on an injected parameter: never satisfied.
#[diagnostic::on_unimplemented(
    message = "`flatten` applies to arguments only; `{Self}` is injected, not read from the arguments",
    label = "injected, not read from the arguments"
)]
pub trait FlattenOnInjected {}

/// A parameter read from the call's arguments.
pub struct Argument<T>(PhantomData<fn() -> T>);

impl<T: DeserializeOwned + JsonSchema> Argument<T> {
    pub fn describe<S: JsonSchema>(
        self,
        sig: &mut Signature,
        name: &'static str,
        description: Option<&str>,
        required: bool,
    ) {
        sig.argument::<S>(name, description, required, None);
    }

    pub fn describe_default<S: JsonSchema>(
        self,
        sig: &mut Signature,
        name: &'static str,
        description: Option<&str>,
        default: fn() -> T,
    ) where
        T: Serialize,
    {
        sig.argument::<S>(name, description, false, serde_json::to_value(default()).ok());
    }

    pub fn describe_flatten(self, sig: &mut Signature, name: &'static str) {
        sig.flatten::<T>(name);
    }

    pub fn slot(self, missing: Missing<T>) -> ArgumentSlot<T> {
        ArgumentSlot { value: None, given: false, missing, whole: false }
    }

    pub fn slot_whole(self) -> ArgumentSlot<T> {
        ArgumentSlot { value: None, given: false, missing: Missing::Required, whole: true }
    }

    pub fn inject(self, _call: &ToolCall, slot: ArgumentSlot<T>) -> Result<T, CallError> {
        let value = match slot.missing {
            _ if slot.given => slot.value,
            Missing::Default(default) => Some(default()),
            Missing::Required => None,
        };
        value.ok_or_else(|| CallError::Internal("an argument was used before the arguments were read".to_owned()))
    }
}

/// A parameter that is neither; its probe already reported the error, and
/// these do nothing so that no second error follows from it.
pub struct Unusable<T>(PhantomData<fn() -> T>);

impl<T> Unusable<T> {
    pub fn describe<S: ?Sized>(self, _: &mut Signature, _: &'static str, _: Option<&str>, _: bool) {}

    pub fn describe_default<S: ?Sized>(self, _: &mut Signature, _: &'static str, _: Option<&str>, _: fn() -> T) {}

    pub fn describe_flatten(self, _: &mut Signature, _: &'static str) {}

    pub fn slot(self, _: Missing<T>) -> NameOnly {
        NameOnly::default()
    }

    pub fn slot_whole(self) -> NameOnly {
        NameOnly::default()
    }

    pub fn inject(self, _: &ToolCall, _: NameOnly) -> Result<T, CallError> {
        Err(CallError::Internal("a parameter that is neither argument nor extractor".to_owned()))
    }
}

/// Where one argument's value goes.
pub struct ArgumentSlot<T> {
    value: Option<T>,
    /// The arguments named it (even if its value was not read yet).
    given: bool,
    missing: Missing<T>,
    /// `#[mcp(flatten)]`: the whole arguments object.
    whole: bool,
}

/// The slot of an injected parameter: only notes that the arguments used
/// its name, which makes that name an unknown argument.
#[derive(Default)]
pub struct NameOnly {
    given: bool,
}

/// Fills a slot during the fast pass.
pub trait Slot {
    /// Reads the map's next value into the slot; `clean` turns false on
    /// anything that needs the careful pass.
    fn fill<'de, A: MapAccess<'de>>(&mut self, map: &mut A, clean: &mut bool) -> Result<(), A::Error>;
}

/// What the careful pass needs of a slot (object safe, so the pass is not
/// generic over every tool's tuple).
pub trait SlotState {
    fn is_argument(&self) -> bool;
    fn is_given(&self) -> bool;
    /// A required argument that was not given.
    fn is_missing(&self) -> bool;
    fn is_whole(&self) -> bool;
    fn reset(&mut self);
    /// Reads `raw` (one argument's JSON, or with `is_whole` the whole
    /// object), recording what is wrong with it.
    fn read(&mut self, raw: &str, name: &str, problems: &mut Problems);
}

impl<T: DeserializeOwned + JsonSchema> Slot for ArgumentSlot<T> {
    fn fill<'de, A: MapAccess<'de>>(&mut self, map: &mut A, clean: &mut bool) -> Result<(), A::Error> {
        if self.given {
            *clean = false;
            map.next_value::<IgnoredAny>()?;
            return Ok(());
        }
        self.given = true;
        self.value = Some(map.next_value_seed(Strict::<T> { clean, target: PhantomData })?);
        Ok(())
    }
}

impl<T: DeserializeOwned + JsonSchema> SlotState for ArgumentSlot<T> {
    fn is_argument(&self) -> bool {
        true
    }

    fn is_given(&self) -> bool {
        self.given
    }

    fn is_missing(&self) -> bool {
        !self.given && matches!(self.missing, Missing::Required)
    }

    fn is_whole(&self) -> bool {
        self.whole
    }

    fn reset(&mut self) {
        self.value = None;
        self.given = false;
    }

    fn read(&mut self, raw: &str, name: &str, problems: &mut Problems) {
        self.given = true;
        self.value = read_value::<T>(raw, name, self.whole, problems);
        if self.whole && self.value.is_none() {
            describe_whole_failure::<T>(raw, problems);
        }
    }
}

impl Slot for NameOnly {
    fn fill<'de, A: MapAccess<'de>>(&mut self, map: &mut A, clean: &mut bool) -> Result<(), A::Error> {
        self.given = true;
        *clean = false;
        map.next_value::<IgnoredAny>()?;
        Ok(())
    }
}

impl SlotState for NameOnly {
    fn is_argument(&self) -> bool {
        false
    }

    fn is_given(&self) -> bool {
        self.given
    }

    fn is_missing(&self) -> bool {
        false
    }

    fn is_whole(&self) -> bool {
        false
    }

    fn reset(&mut self) {
        self.given = false;
    }

    fn read(&mut self, _raw: &str, _name: &str, _problems: &mut Problems) {
        self.given = true;
    }
}

/// Deserializes `T`, noting (in `clean`) any field serde ignored.
struct Strict<'c, T> {
    clean: &'c mut bool,
    target: PhantomData<fn() -> T>,
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for Strict<'_, T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        let clean = self.clean;
        serde_ignored::deserialize(deserializer, |_| *clean = false)
    }
}

/// A tool's parameter slots, as a tuple (the macro builds it, one slot per
/// parameter, in order).
pub trait Slots {
    const LEN: usize;
    fn fill_at<'de, A: MapAccess<'de>>(&mut self, index: usize, map: &mut A, clean: &mut bool) -> Result<(), A::Error>;
    fn state(&mut self, index: usize) -> &mut dyn SlotState;
    fn state_ref(&self, index: usize) -> &dyn SlotState;
}

macro_rules! slot_tuples {
    ($( $len:literal => ($($index:tt $name:ident),*) ),* $(,)?) => {$(
        impl<$($name: Slot + SlotState),*> Slots for ($($name,)*) {
            const LEN: usize = $len;

            #[allow(unused_variables)]
            fn fill_at<'de, Map: MapAccess<'de>>(
                &mut self,
                index: usize,
                map: &mut Map,
                clean: &mut bool,
            ) -> Result<(), Map::Error> {
                match index {
                    $($index => self.$index.fill(map, clean),)*
                    _ => unreachable!("a key index is below the number of parameters"),
                }
            }

            #[allow(unused_variables)]
            fn state(&mut self, index: usize) -> &mut dyn SlotState {
                match index {
                    $($index => &mut self.$index,)*
                    _ => unreachable!("a slot index is below the number of parameters"),
                }
            }

            #[allow(unused_variables)]
            fn state_ref(&self, index: usize) -> &dyn SlotState {
                match index {
                    $($index => &self.$index,)*
                    _ => unreachable!("a slot index is below the number of parameters"),
                }
            }
        }
    )*};
}

slot_tuples! {
    0 => (),
    1 => (0 S0),
    2 => (0 S0, 1 S1),
    3 => (0 S0, 1 S1, 2 S2),
    4 => (0 S0, 1 S1, 2 S2, 3 S3),
    5 => (0 S0, 1 S1, 2 S2, 3 S3, 4 S4),
    6 => (0 S0, 1 S1, 2 S2, 3 S3, 4 S4, 5 S5),
    7 => (0 S0, 1 S1, 2 S2, 3 S3, 4 S4, 5 S5, 6 S6),
    8 => (0 S0, 1 S1, 2 S2, 3 S3, 4 S4, 5 S5, 6 S6, 7 S7),
    9 => (0 S0, 1 S1, 2 S2, 3 S3, 4 S4, 5 S5, 6 S6, 7 S7, 8 S8),
    10 => (0 S0, 1 S1, 2 S2, 3 S3, 4 S4, 5 S5, 6 S6, 7 S7, 8 S8, 9 S9),
    11 => (0 S0, 1 S1, 2 S2, 3 S3, 4 S4, 5 S5, 6 S6, 7 S7, 8 S8, 9 S9, 10 S10),
    12 => (0 S0, 1 S1, 2 S2, 3 S3, 4 S4, 5 S5, 6 S6, 7 S7, 8 S8, 9 S9, 10 S10, 11 S11),
    13 => (0 S0, 1 S1, 2 S2, 3 S3, 4 S4, 5 S5, 6 S6, 7 S7, 8 S8, 9 S9, 10 S10, 11 S11, 12 S12),
    14 => (0 S0, 1 S1, 2 S2, 3 S3, 4 S4, 5 S5, 6 S6, 7 S7, 8 S8, 9 S9, 10 S10, 11 S11, 12 S12, 13 S13),
    15 => (0 S0, 1 S1, 2 S2, 3 S3, 4 S4, 5 S5, 6 S6, 7 S7, 8 S8, 9 S9, 10 S10, 11 S11, 12 S12, 13 S13, 14 S14),
    16 => (0 S0, 1 S1, 2 S2, 3 S3, 4 S4, 5 S5, 6 S6, 7 S7, 8 S8, 9 S9, 10 S10, 11 S11, 12 S12, 13 S13, 14 S14, 15 S15),
    17 => (0 S0, 1 S1, 2 S2, 3 S3, 4 S4, 5 S5, 6 S6, 7 S7, 8 S8, 9 S9, 10 S10, 11 S11, 12 S12, 13 S13, 14 S14, 15 S15, 16 S16),
    18 => (0 S0, 1 S1, 2 S2, 3 S3, 4 S4, 5 S5, 6 S6, 7 S7, 8 S8, 9 S9, 10 S10, 11 S11, 12 S12, 13 S13, 14 S14, 15 S15, 16 S16, 17 S17),
    19 => (0 S0, 1 S1, 2 S2, 3 S3, 4 S4, 5 S5, 6 S6, 7 S7, 8 S8, 9 S9, 10 S10, 11 S11, 12 S12, 13 S13, 14 S14, 15 S15, 16 S16, 17 S17, 18 S18),
    20 => (0 S0, 1 S1, 2 S2, 3 S3, 4 S4, 5 S5, 6 S6, 7 S7, 8 S8, 9 S9, 10 S10, 11 S11, 12 S12, 13 S13, 14 S14, 15 S15, 16 S16, 17 S17, 18 S18, 19 S19),
}

/// The most parameters a tool can have (the tuples `Slots` is implemented for).
pub const MAX_PARAMETERS: usize = 20;

/// Reads the call's arguments (absent or `null`: `{}`) into `slots`, the
/// tool's parameters in order, named `names`. One error names every
/// problem: missing, unknown and repeated arguments, invalid values, and
/// unknown fields where the published schema refuses them.
pub fn read_arguments<S: Slots>(
    call: &ToolCall,
    names: &'static [&'static str],
    slots: &mut S,
) -> Result<(), CallError> {
    let raw = call.raw_arguments().map(RawValue::get);
    if let Some(index) = (0..S::LEN).find(|&i| slots.state_ref(i).is_whole()) {
        // A flattened type reads the whole object in one go either way.
        let mut problems = Problems::default();
        slots.state(index).read(raw.unwrap_or("{}"), names[index], &mut problems);
        return problems.into_result(names, slots);
    }
    if read_fast(raw, names, slots) {
        return Ok(());
    }
    (0..S::LEN).for_each(|i| slots.state(i).reset());
    let mut problems = Problems::default();
    if let Some(raw) = raw {
        let mut de = serde_json::Deserializer::from_str(raw);
        let split = (&mut de).deserialize_map(Split { names, slots: &mut *slots, problems: &mut problems });
        split.and_then(|()| de.end()).map_err(|e| {
            CallError::InvalidArguments(format!(
                "invalid arguments: {}",
                crate::protocol::strip_position(&e.to_string())
            ))
        })?;
    }
    problems.into_result(names, slots)
}

/// The one pass: true when every argument was read and nothing is off.
fn read_fast<S: Slots>(raw: Option<&str>, names: &'static [&'static str], slots: &mut S) -> bool {
    if let Some(raw) = raw {
        let mut clean = true;
        let mut de = serde_json::Deserializer::from_str(raw);
        let read = (&mut de).deserialize_map(Fast { names, slots: &mut *slots, clean: &mut clean });
        if read.and_then(|()| de.end()).is_err() || !clean {
            return false;
        }
    }
    (0..S::LEN).all(|i| !slots.state_ref(i).is_missing())
}

struct Fast<'s, 'c, S> {
    names: &'static [&'static str],
    slots: &'s mut S,
    clean: &'c mut bool,
}

impl<'de, S: Slots> Visitor<'de> for Fast<'_, '_, S> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object of named arguments")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeyIndex { names: self.names })? {
            match key {
                Key::Known(index) => self.slots.fill_at(index, &mut map, self.clean)?,
                Key::Unknown(_) => {
                    *self.clean = false;
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// The careful pass: each argument's raw JSON read on its own, so that a
/// bad one does not hide the others.
struct Split<'s, 'p, S> {
    names: &'static [&'static str],
    slots: &'s mut S,
    problems: &'p mut Problems,
}

impl<'de, S: Slots> Visitor<'de> for Split<'_, '_, S> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object of named arguments")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeyIndex { names: self.names })? {
            let value: &'de RawValue = map.next_value()?;
            match key {
                Key::Known(index) => {
                    let slot = self.slots.state(index);
                    if slot.is_given() {
                        self.problems.repeated.push(self.names[index]);
                    } else {
                        slot.read(value.get(), self.names[index], self.problems);
                    }
                }
                Key::Unknown(name) => self.problems.unknown.push(name),
            }
        }
        Ok(())
    }
}

/// Everything the careful pass found wrong.
#[derive(Default)]
pub struct Problems {
    unknown: Vec<String>,
    repeated: Vec<&'static str>,
    found: Vec<Problem>,
}

enum Problem {
    Missing(String),
    /// A field the published schema refuses, and the names it takes there.
    UnknownField {
        path: String,
        expected: Vec<String>,
    },
    Invalid {
        path: String,
        message: String,
    },
}

impl Problems {
    fn into_result<S: Slots>(mut self, names: &'static [&'static str], slots: &S) -> Result<(), CallError> {
        let mut missing = Vec::new();
        for (index, name) in names.iter().enumerate() {
            let slot = slots.state_ref(index);
            if slot.is_missing() {
                missing.push(Problem::Missing((*name).to_owned()));
            } else if slot.is_given() && !slot.is_argument() {
                self.unknown.push((*name).to_owned());
            }
        }
        self.found.splice(0..0, missing);
        if self.found.is_empty() && self.unknown.is_empty() && self.repeated.is_empty() {
            return Ok(());
        }
        let accepted: Vec<&str> = (0..names.len())
            .filter(|&i| slots.state_ref(i).is_argument() && !slots.state_ref(i).is_whole())
            .map(|i| names[i])
            .collect();
        Err(CallError::InvalidArguments(self.describe(&accepted)))
    }

    fn describe(&self, accepted: &[&str]) -> String {
        let mut parts = Vec::new();
        let missing: Vec<&str> = self
            .found
            .iter()
            .filter_map(|p| if let Problem::Missing(n) = p { Some(n.as_str()) } else { None })
            .collect();
        if !missing.is_empty() {
            let s = if missing.len() == 1 { "" } else { "s" };
            parts.push(format!("missing required argument{s} {}", names_list(&missing)));
        }
        if !self.unknown.is_empty() {
            let s = if self.unknown.len() == 1 { "" } else { "s" };
            let takes = match accepted {
                [] => "this tool takes no arguments".to_owned(),
                _ => format!("this tool takes {}", names_list(accepted)),
            };
            parts.push(format!("unknown argument{s} {} ({takes})", names_list(&self.unknown)));
        }
        for name in &self.repeated {
            parts.push(format!("argument `{name}` given more than once"));
        }
        for problem in &self.found {
            match problem {
                Problem::Missing(_) => {}
                Problem::UnknownField { path, expected } if !path.contains(['.', '[']) => {
                    parts.push(format!("unknown argument `{path}` (this tool takes {})", names_list(expected)));
                }
                Problem::UnknownField { path, expected } => {
                    let parent = path.rsplit_once(['.', '[']).map_or("", |(p, _)| p);
                    let takes = match expected.is_empty() {
                        true => "no fields".to_owned(),
                        false => names_list(expected),
                    };
                    parts.push(format!("unknown field `{path}` (`{parent}` takes {takes})"));
                }
                Problem::Invalid { path, message } if path.is_empty() => parts.push(message.clone()),
                Problem::Invalid { path, message } => parts.push(format!("`{path}`: {message}")),
            }
        }
        if parts.len() > LISTED {
            let more = parts.len() - LISTED;
            parts.truncate(LISTED);
            parts.push(format!("and {more} more problems"));
        }
        match (parts.len(), self.found.first()) {
            (1, Some(Problem::Invalid { path, message })) if !path.is_empty() => {
                format!("invalid argument `{path}`: {message}")
            }
            _ => format!("invalid arguments: {}", parts.join("; ")),
        }
    }
}

/// Deserializes one argument (or, `whole`, the whole object), refusing
/// the unknown fields its published schema refuses. Path tracking and the
/// schema are only paid for when something is wrong.
fn read_value<T: DeserializeOwned + JsonSchema>(
    raw: &str,
    name: &str,
    whole: bool,
    problems: &mut Problems,
) -> Option<T> {
    let prefix = if whole { "" } else { name };
    let mut ignored: Vec<Vec<Step>> = Vec::new();
    let mut de = serde_json::Deserializer::from_str(raw);
    let parsed = serde_ignored::deserialize(&mut de, |path| ignored.push(steps(&path))).and_then(|v| {
        de.end()?;
        Ok(v)
    });
    let value = match parsed {
        Ok(value) => value,
        Err(_) => {
            let mut de = serde_json::Deserializer::from_str(raw);
            let (path, message) = match serde_path_to_error::deserialize::<_, T>(&mut de) {
                Err(e) => (e.path().to_string(), e.inner().to_string()),
                Ok(_) => (".".to_owned(), "trailing characters".to_owned()),
            };
            let message = crate::protocol::strip_position(&message).to_owned();
            problems.found.push(Problem::Invalid { path: join_path(prefix, &path), message });
            return None;
        }
    };
    if ignored.is_empty() {
        return Some(value);
    }
    let schema = if whole { ArgumentSchema::whole::<T>() } else { ArgumentSchema::of::<T>() };
    let before = problems.found.len();
    for path in ignored {
        let Some(expected) = schema.rejects_unknown_field(&path) else { continue };
        problems.found.push(Problem::UnknownField { path: steps_text(prefix, &path), expected });
    }
    (problems.found.len() == before).then_some(value)
}

/// A flattened type failed: name every missing required property and
/// every unknown one its schema refuses, not just serde's first.
fn describe_whole_failure<T: JsonSchema>(raw: &str, problems: &mut Problems) {
    if problems.found.iter().any(|p| matches!(p, Problem::UnknownField { .. })) {
        return;
    }
    let Ok(Value::Object(given)) = serde_json::from_str::<Value>(raw) else { return };
    let schema = ArgumentSchema::whole::<T>();
    let mut found = Vec::new();
    for name in schema.required() {
        if !given.contains_key(name) {
            found.push(Problem::Missing(name.to_owned()));
        }
    }
    for key in given.keys() {
        if let Some(expected) = schema.rejects_unknown_field(&[Step::Key(key.clone())]) {
            found.push(Problem::UnknownField { path: key.clone(), expected });
        }
    }
    if !found.is_empty() {
        // These say more than serde's first error (which is one of them).
        problems.found.retain(|p| !matches!(p, Problem::Invalid { path, .. } if path.is_empty()));
        problems.found.extend(found);
    }
}

/// How many names or problems an error lists before summing up the rest: a
/// call with thousands of unknown keys gets a bounded message.
const LISTED: usize = 20;

/// `a`, `` `a` and `b` ``, `` `a`, `b` and `c` ``; past [`LISTED`] names,
/// `` `a`, .. `t` and 980 more ``.
pub(crate) fn names_list<S: AsRef<str>>(names: &[S]) -> String {
    let mut quoted: Vec<String> = names.iter().take(LISTED).map(|n| format!("`{}`", n.as_ref())).collect();
    if names.len() > LISTED {
        quoted.push(format!("{} more", names.len() - LISTED));
    }
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// `name` plus serde_path_to_error's path inside it (`.` for the value itself).
fn join_path(name: &str, inner: &str) -> String {
    match inner {
        "." | "" => name.to_owned(),
        _ if name.is_empty() => inner.to_owned(),
        _ if inner.starts_with('[') => format!("{name}{inner}"),
        _ => format!("{name}.{inner}"),
    }
}

fn steps(path: &serde_ignored::Path<'_>) -> Vec<Step> {
    use serde_ignored::Path;
    let mut steps = Vec::new();
    let mut at = path;
    loop {
        match at {
            Path::Root => break,
            Path::Seq { parent, index } => {
                steps.push(Step::Index(*index));
                at = parent;
            }
            Path::Map { parent, key } => {
                steps.push(Step::Key(key.clone()));
                at = parent;
            }
            Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => at = parent,
        }
    }
    steps.reverse();
    steps
}

fn steps_text(name: &str, steps: &[Step]) -> String {
    let mut out = name.to_owned();
    for step in steps {
        match step {
            Step::Key(key) if out.is_empty() => out.push_str(key),
            Step::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Step::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

enum Key {
    Known(usize),
    Unknown(String),
}

/// Reads an object key as the index of the parameter it names, without
/// allocating for the names a tool takes.
struct KeyIndex {
    names: &'static [&'static str],
}

impl<'de> DeserializeSeed<'de> for KeyIndex {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIndex {
    type Value = Key;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an argument name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match self.names.iter().position(|n| *n == key) {
            Some(index) => Key::Known(index),
            None => Key::Unknown(key.to_owned()),
        })
    }
}
