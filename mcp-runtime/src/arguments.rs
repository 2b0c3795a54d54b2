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
//! Reading is split in two so that extractors (which may take a pooled
//! connection or check a token) only run once the arguments are known to
//! be valid: `read` every parameter into [`Arguments`], `check` (one error
//! naming every missing, unknown and invalid argument), then `inject`.

use std::marker::PhantomData;

use schemars::JsonSchema;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, Visitor};
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
                 but {} read from the arguments too; move {} into `{flattened}`'s type",
                names_list(&self.arguments),
                if self.arguments.len() == 1 { "it" } else { "them" },
            ));
        }
        (self.schema.finish(), self.required_state, self.defects)
    }
}

/// Selects a parameter's kind by its type's traits; see the module docs.
/// `S` is the type whose schema is published: `T`, or `U` for an
/// `Option<U>` (so that an error names `U`, the type to fix).
pub struct Probe<T, S = T>(PhantomData<fn() -> (T, S)>);

impl<T, S> Probe<T, S> {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Probe(PhantomData)
    }
}

impl<T, S> Clone for Probe<T, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T, S> Copy for Probe<T, S> {}

/// The probe traits, one per rule of the module docs; the macro imports
/// them all as `_`.
pub mod probe {
    use super::*;

    pub trait InjectedProbe {
        type T;
        fn __mcp_param_kind(self) -> Injected<Self::T>;
    }

    impl<T: FromToolCall, S> InjectedProbe for &&&&Probe<T, S> {
        type T = T;
        fn __mcp_param_kind(self) -> Injected<T> {
            Injected(PhantomData)
        }
    }

    pub trait ArgumentProbe {
        type T;
        fn __mcp_param_kind(self) -> Argument<Self::T>;
    }

    impl<T: DeserializeOwned + JsonSchema, S> ArgumentProbe for &&&Probe<T, S> {
        type T = T;
        fn __mcp_param_kind(self) -> Argument<T> {
            Argument(PhantomData)
        }
    }

    /// `Deserialize` without `JsonSchema`: reports the missing schema.
    pub trait SchemalessProbe {
        type T;
        type S;
        fn __mcp_param_kind(self) -> Unusable<Self::T>
        where
            Self::S: ToolArgument;
    }

    impl<T: DeserializeOwned, S> SchemalessProbe for &&Probe<T, S> {
        type T = T;
        type S = S;
        fn __mcp_param_kind(self) -> Unusable<T>
        where
            S: ToolArgument,
        {
            Unusable(PhantomData)
        }
    }

    /// `JsonSchema` without `Deserialize`: reports the missing derive.
    pub trait UndeserializableProbe {
        type T;
        type S;
        fn __mcp_param_kind(self) -> Unusable<Self::T>
        where
            Self::S: ToolArgument;
    }

    impl<T: JsonSchema, S> UndeserializableProbe for &Probe<T, S> {
        type T = T;
        type S = S;
        fn __mcp_param_kind(self) -> Unusable<T>
        where
            S: ToolArgument,
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

    impl<T, S> NeitherProbe for Probe<T, S> {
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

    pub fn read<const N: usize>(self, _args: &mut Arguments<'_, N>, _index: usize, _missing: Missing<T>) -> Option<T> {
        None
    }

    pub fn read_flatten<const N: usize>(self, _args: &mut Arguments<'_, N>, _index: usize) -> Option<T> {
        None
    }

    pub fn inject(self, call: &ToolCall, _read: Option<T>) -> Result<T, CallError> {
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

    pub fn read<const N: usize>(self, args: &mut Arguments<'_, N>, index: usize, missing: Missing<T>) -> Option<T> {
        args.read(index, missing)
    }

    pub fn read_flatten<const N: usize>(self, args: &mut Arguments<'_, N>, index: usize) -> Option<T> {
        args.read_whole(index)
    }

    pub fn inject(self, _call: &ToolCall, read: Option<T>) -> Result<T, CallError> {
        read.ok_or_else(|| CallError::Internal("an argument was used before the arguments were checked".to_owned()))
    }
}

/// A parameter that is neither; its probe already reported the error, and
/// these do nothing so that no second error follows from it.
pub struct Unusable<T>(PhantomData<fn() -> T>);

impl<T> Unusable<T> {
    pub fn describe<S: ?Sized>(self, _: &mut Signature, _: &'static str, _: Option<&str>, _: bool) {}

    pub fn describe_default<S: ?Sized>(self, _: &mut Signature, _: &'static str, _: Option<&str>, _: fn() -> T) {}

    pub fn describe_flatten(self, _: &mut Signature, _: &'static str) {}

    pub fn read<const N: usize>(self, _: &mut Arguments<'_, N>, _: usize, _: Missing<T>) -> Option<T> {
        None
    }

    pub fn read_flatten<const N: usize>(self, _: &mut Arguments<'_, N>, _: usize) -> Option<T> {
        None
    }

    pub fn inject(self, _: &ToolCall, _: Option<T>) -> Result<T, CallError> {
        Err(CallError::Internal("a parameter that is neither argument nor extractor".to_owned()))
    }
}

/// One call's arguments, split by parameter name, and every problem found
/// reading them.
pub struct Arguments<'a, const N: usize> {
    names: &'static [&'static str; N],
    values: [Option<&'a RawValue>; N],
    /// Which parameters were read as arguments; a value given for any other
    /// (an injected parameter's name) is an unknown argument.
    read: [bool; N],
    /// The index of a `#[mcp(flatten)]` parameter, which takes them all.
    whole: Option<usize>,
    unknown: Vec<String>,
    repeated: Vec<&'static str>,
    problems: Vec<Problem>,
}

enum Problem {
    Missing(String),
    /// A field the published schema refuses, and the names it takes there.
    UnknownField { path: String, expected: Vec<String> },
    Invalid { path: String, message: String },
}

impl<'a, const N: usize> Arguments<'a, N> {
    /// Splits the call's arguments (absent or `null` read as `{}`) by name.
    /// Fails only when they are not a JSON object at all.
    pub fn parse(
        call: &'a ToolCall,
        names: &'static [&'static str; N],
        whole: Option<usize>,
    ) -> Result<Self, CallError> {
        let mut args = Arguments {
            names,
            values: [None; N],
            read: [false; N],
            whole,
            unknown: Vec::new(),
            repeated: Vec::new(),
            problems: Vec::new(),
        };
        let raw = call.raw_arguments();
        if let Some(index) = whole {
            // Type errors in the whole object are the flattened type's to report.
            args.values[index] = raw;
            return Ok(args);
        }
        let Some(raw) = raw else { return Ok(args) };
        let mut de = serde_json::Deserializer::from_str(raw.get());
        (&mut de).deserialize_map(Split { args: &mut args }).and_then(|()| de.end()).map_err(|e| {
            CallError::InvalidArguments(format!("invalid arguments: {}", crate::protocol::strip_position(&e.to_string())))
        })?;
        Ok(args)
    }

    fn read<T: DeserializeOwned + JsonSchema>(&mut self, index: usize, missing: Missing<T>) -> Option<T> {
        self.read[index] = true;
        let name = self.names[index];
        let Some(raw) = self.values[index] else {
            return match missing {
                Missing::Required => {
                    self.problems.push(Problem::Missing(name.to_owned()));
                    None
                }
                Missing::Default(default) => Some(default()),
            };
        };
        self.deserialize(raw.get(), name, false)
    }

    fn read_whole<T: DeserializeOwned + JsonSchema>(&mut self, index: usize) -> Option<T> {
        self.read[index] = true;
        let raw = self.values[index].map_or("{}", RawValue::get);
        let value = self.deserialize::<T>(raw, self.names[index], true);
        if value.is_none() && !self.problems.iter().any(|p| matches!(p, Problem::UnknownField { .. })) {
            self.describe_whole_failure::<T>(raw);
        }
        value
    }

    /// Deserializes one argument (or, `whole`, the whole object), refusing
    /// the unknown fields its published schema refuses. Path tracking and
    /// the schema are only paid for when something is wrong.
    fn deserialize<T: DeserializeOwned + JsonSchema>(&mut self, json: &str, name: &str, whole: bool) -> Option<T> {
        let mut ignored: Vec<Vec<Step>> = Vec::new();
        let mut de = serde_json::Deserializer::from_str(json);
        let parsed = serde_ignored::deserialize(&mut de, |path| ignored.push(steps(&path))).and_then(|v| {
            de.end()?;
            Ok(v)
        });
        let value = match parsed {
            Ok(value) => value,
            Err(_) => {
                let mut de = serde_json::Deserializer::from_str(json);
                let e = serde_path_to_error::deserialize::<_, T>(&mut de).err();
                let (path, message) = match &e {
                    Some(e) => (e.path().to_string(), e.inner().to_string()),
                    None => (".".to_owned(), "trailing characters".to_owned()),
                };
                let path = join_path(if whole { "" } else { name }, &path);
                let message = crate::protocol::strip_position(&message).to_owned();
                self.problems.push(Problem::Invalid { path, message });
                return None;
            }
        };
        if ignored.is_empty() {
            return Some(value);
        }
        let schema = if whole { ArgumentSchema::whole::<T>() } else { ArgumentSchema::of::<T>() };
        let before = self.problems.len();
        for path in ignored {
            let Some(expected) = schema.rejects_unknown_field(&path) else { continue };
            let path = steps_text(if whole { "" } else { name }, &path);
            self.problems.push(Problem::UnknownField { path, expected });
        }
        (self.problems.len() == before).then_some(value)
    }

    /// A flattened type failed: name every missing required property and
    /// every unknown one its schema refuses, not just serde's first.
    fn describe_whole_failure<T: JsonSchema>(&mut self, raw: &str) {
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
            self.problems.retain(|p| !matches!(p, Problem::Invalid { path, .. } if path.is_empty()));
            self.problems.extend(found);
        }
    }

    /// Every problem found, as one error a model can act on in one retry.
    pub fn check(&mut self) -> Result<(), CallError> {
        for index in 0..N {
            if self.values[index].is_some() && !self.read[index] && self.whole.is_none() {
                self.unknown.push(self.names[index].to_owned());
            }
        }
        if self.problems.is_empty() && self.unknown.is_empty() && self.repeated.is_empty() {
            return Ok(());
        }
        Err(CallError::InvalidArguments(self.describe()))
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        let missing: Vec<&str> = self
            .problems
            .iter()
            .filter_map(|p| if let Problem::Missing(n) = p { Some(n.as_str()) } else { None })
            .collect();
        if !missing.is_empty() {
            let s = if missing.len() == 1 { "" } else { "s" };
            parts.push(format!("missing required argument{s} {}", names_list(&missing)));
        }
        if !self.unknown.is_empty() {
            let s = if self.unknown.len() == 1 { "" } else { "s" };
            let unknown: Vec<&str> = self.unknown.iter().map(String::as_str).collect();
            let accepted: Vec<&str> =
                (0..N).filter(|&i| self.read[i] && self.whole.is_none()).map(|i| self.names[i]).collect();
            let takes = if accepted.is_empty() {
                "this tool takes no arguments".to_owned()
            } else {
                format!("this tool takes {}", names_list(&accepted))
            };
            parts.push(format!("unknown argument{s} {} ({takes})", names_list(&unknown)));
        }
        for name in &self.repeated {
            parts.push(format!("argument `{name}` given more than once"));
        }
        for problem in &self.problems {
            match problem {
                Problem::Missing(_) => {}
                Problem::UnknownField { path, expected } if !path.contains(['.', '[']) => {
                    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
                    parts.push(format!("unknown argument `{path}` (this tool takes {})", names_list(&expected)));
                }
                Problem::UnknownField { path, expected } => {
                    let parent = path.rsplit_once(['.', '[']).map_or("", |(p, _)| p);
                    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
                    let takes = match expected.is_empty() {
                        true => "no fields".to_owned(),
                        false => names_list(&expected),
                    };
                    parts.push(format!("unknown field `{path}` (`{parent}` takes {takes})"));
                }
                Problem::Invalid { path, message } if path.is_empty() => parts.push(message.clone()),
                Problem::Invalid { path, message } => parts.push(format!("`{path}`: {message}")),
            }
        }
        match (parts.len(), self.problems.first()) {
            (1, Some(Problem::Invalid { path, message })) if !path.is_empty() => {
                format!("invalid argument `{path}`: {message}")
            }
            _ => format!("invalid arguments: {}", parts.join("; ")),
        }
    }
}

/// `a`, `` `a` and `b` ``, `` `a`, `b` and `c` ``.
pub(crate) fn names_list<S: AsRef<str>>(names: &[S]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{}`", n.as_ref())).collect();
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

/// Fills [`Arguments`] from a JSON object in one pass: known names keep
/// their raw value (borrowed, unparsed), others are noted as unknown.
struct Split<'s, 'a, const N: usize> {
    args: &'s mut Arguments<'a, N>,
}

impl<'de: 'a, 'a, const N: usize> Visitor<'de> for Split<'_, 'a, N> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object of named arguments")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let names = self.args.names;
        while let Some(key) = map.next_key_seed(KeyIndex { names })? {
            let value: &'de RawValue = map.next_value()?;
            match key {
                Key::Known(index) if self.args.values[index].is_some() => self.args.repeated.push(names[index]),
                Key::Known(index) => self.args.values[index] = Some(value),
                Key::Unknown(name) => self.args.unknown.push(name),
            }
        }
        Ok(())
    }
}

enum Key {
    Known(usize),
    Unknown(String),
}

/// Reads an object key as the index of the parameter it names, without
/// allocating for the names a tool takes.
struct KeyIndex<const N: usize> {
    names: &'static [&'static str; N],
}

impl<'de, const N: usize> DeserializeSeed<'de> for KeyIndex<N> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for KeyIndex<N> {
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
