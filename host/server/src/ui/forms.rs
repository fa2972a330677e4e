//! HTML forms generated from JSON Schema, and the way back: posted fields
//! into the JSON the schema describes.
//!
//! Each input is named by its JSON pointer under the form's root (`/name`,
//! `/database/size`), so a problem the API reports at `/input/name` lands
//! beside the field that caused it. The fields cover what action inputs and
//! template parameters use: strings (text, long text, password, e-mail,
//! URL, date, choices), numbers, booleans, lists (one item a line, or
//! checkboxes for a list of choices) and nested objects; anything else is
//! edited as JSON text.
//!
//! Fields appear in the order of the schema's `ui:order` when it has one
//! (`*` stands for the rest); the host fills `ui:order` in from the order a
//! plugin wrote its properties, so forms follow the author's order.

use std::collections::HashMap;

use maud::{html, Markup};
use serde_json::{Map, Value};

/// What a form shows: the values last posted and the problems found.
#[derive(Default)]
pub struct FormState {
    /// Posted values by field name (a JSON pointer); the last one wins.
    pub values: HashMap<String, Vec<String>>,
    /// Problems by JSON pointer (relative to the form's root).
    pub errors: Vec<(String, String)>,
}

impl FormState {
    pub fn from_posted(form: &[(String, String)]) -> FormState {
        let mut values: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in form {
            values.entry(k.clone()).or_default().push(v.clone());
        }
        FormState {
            values,
            errors: Vec::new(),
        }
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    fn all(&self, name: &str) -> &[String] {
        self.values.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    fn errors_at(&self, pointer: &str) -> Vec<&str> {
        self.errors
            .iter()
            .filter(|(p, _)| p == pointer)
            .map(|(_, m)| m.as_str())
            .collect()
    }

    /// Takes problems the API reported under `prefix` (`/parameters`) as
    /// problems of the fields under `base` (the form's names for them),
    /// moving a "required property" problem from the object to the missing
    /// field.
    pub fn add_api_errors(&mut self, errors: &[(String, String)], prefix: &str, base: &str) {
        for (field, message) in errors {
            let Some(rest) = field.strip_prefix(prefix) else {
                self.errors.push((field.clone(), message.clone()));
                continue;
            };
            let pointer = match required_property(message) {
                Some(name) => format!("{base}{rest}/{}", escape_pointer(&name)),
                None => format!("{base}{rest}"),
            };
            self.errors.push((pointer, message.clone()));
        }
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}

/// `"name" is a required property` names the property.
fn required_property(message: &str) -> Option<String> {
    let rest = message.strip_prefix('"')?;
    let (name, tail) = rest.split_once('"')?;
    tail.trim_start()
        .starts_with("is a required property")
        .then(|| name.to_owned())
}

fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// The HTML id of the field at `pointer`.
pub fn field_id(pointer: &str) -> String {
    let mut id = String::from("field");
    for c in pointer.chars() {
        if c.is_ascii_alphanumeric() {
            id.push(c);
        } else {
            id.push('-');
        }
    }
    id
}

/// Whether a property is secret: it is never shown again once typed.
fn is_secret(schema: &Value) -> bool {
    schema["format"] == "password"
        || schema["writeOnly"] == true
        || schema.get("x-secret").is_some_and(|v| v == true)
}

fn type_of(schema: &Value) -> &str {
    match &schema["type"] {
        Value::String(t) => t,
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or(""),
        _ => {
            if schema.get("properties").is_some() {
                "object"
            } else if schema.get("enum").is_some() {
                "string"
            } else {
                ""
            }
        }
    }
}

/// The object's properties in display order.
pub fn ordered(schema: &Value) -> Vec<(&String, &Value)> {
    let Some(props) = schema["properties"].as_object() else {
        return Vec::new();
    };
    let order: Vec<&str> = schema["ui:order"]
        .as_array()
        .map(|o| o.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let star = order.iter().position(|o| *o == "*").unwrap_or(order.len());
    let pick = |names: &[&str]| -> Vec<(&String, &Value)> {
        names
            .iter()
            .filter_map(|n| props.get_key_value(*n))
            .collect()
    };
    let mut out = pick(&order[..star]);
    out.extend(props.iter().filter(|(k, _)| !order.contains(&k.as_str())));
    if star < order.len() {
        out.extend(pick(&order[star + 1..]));
    }
    out
}

fn required(schema: &Value) -> Vec<&str> {
    schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn label_of<'a>(name: &'a str, schema: &'a Value) -> &'a str {
    schema["title"].as_str().unwrap_or(name)
}

/// The problems of a form as a summary, each named by its field's label and
/// linked to the field; `known` lists the form's fields as (pointer, label).
pub fn summary(state: &FormState, known: &[(String, String)]) -> Markup {
    html! {
        @if state.has_errors() {
            div.error-summary role="alert" tabindex="-1" id="error-summary" {
                h2 { "There is a problem" }
                ul {
                    @for (pointer, message) in &state.errors {
                        li {
                            @match known.iter().find(|(p, _)| p == pointer) {
                                Some((_, label)) => {
                                    a href={"#" (field_id(pointer))} { (label) ": " (message) }
                                }
                                None => { (message) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Every field a schema renders, as (pointer, label): which problems have a
/// field to point at, and what to call it.
pub fn pointers(schema: &Value, base: &str, out: &mut Vec<(String, String)>) {
    for (name, prop) in ordered(schema) {
        let pointer = format!("{base}/{}", escape_pointer(name));
        if type_of(prop) == "object" && prop.get("properties").is_some() {
            pointers(prop, &pointer, out);
        } else {
            out.push((pointer, label_of(name, prop).to_owned()));
        }
    }
}

/// The inputs of an object schema; names are pointers under `base`.
pub fn fields(schema: &Value, base: &str, state: &FormState) -> Markup {
    let required = required(schema);
    html! {
        @for (name, prop) in ordered(schema) {
            (field(name, prop, &format!("{base}/{}", escape_pointer(name)), required.contains(&name.as_str()), state))
        }
    }
}

fn field(name: &str, schema: &Value, pointer: &str, required: bool, state: &FormState) -> Markup {
    let id = field_id(pointer);
    let label = label_of(name, schema);
    let errors = state.errors_at(pointer);
    let described = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let describedby = match (schema["description"].is_string(), errors.is_empty()) {
        (true, true) => described.clone(),
        (true, false) => format!("{described} {error_id}"),
        (false, false) => error_id.clone(),
        (false, true) => String::new(),
    };
    let invalid = (!errors.is_empty()).then_some("true");
    let describedby = (!describedby.is_empty()).then_some(describedby);
    let kind = type_of(schema);
    if kind == "object" && schema.get("properties").is_some() {
        return html! {
            fieldset.group {
                legend { (label) }
                @if let Some(d) = schema["description"].as_str() { p.hint { (d) } }
                (fields(schema, pointer, state))
            }
        };
    }
    let default = default_text(schema);
    let posted = state.value(pointer);
    let secret = is_secret(schema);
    // A secret is never sent back to the browser, even after a failed post.
    let current: String = if secret {
        String::new()
    } else {
        posted.map(str::to_owned).or(default).unwrap_or_default()
    };
    let control = if kind == "boolean" {
        let checked = match posted {
            Some(v) => v == "true",
            None => schema["default"] == true,
        };
        html! {
            input type="hidden" name=(pointer) value="false";
            input type="checkbox" id=(id) name=(pointer) value="true" checked[checked]
                aria-invalid=[invalid] aria-describedby=[describedby.as_deref()];
        }
    } else if let Some(options) = schema["enum"].as_array() {
        html! {
            select id=(id) name=(pointer) required[required] aria-invalid=[invalid] aria-describedby=[describedby.as_deref()] {
                @if !required || current.is_empty() {
                    option value="" { "—" }
                }
                @for o in options {
                    @let text = scalar_text(o);
                    option value=(text) selected[text == current] { (text) }
                }
            }
        }
    } else if kind == "array" {
        let items = &schema["items"];
        if let Some(options) = items["enum"].as_array() {
            let chosen: Vec<String> = if state.values.contains_key(pointer) {
                state.all(pointer).to_vec()
            } else {
                schema["default"]
                    .as_array()
                    .map(|d| d.iter().map(scalar_text).collect())
                    .unwrap_or_default()
            };
            html! {
                input type="hidden" name=(pointer) value="";
                span.choices id=(id) role="group" aria-invalid=[invalid] aria-describedby=[describedby.as_deref()] {
                    @for (i, o) in options.iter().enumerate() {
                        @let text = scalar_text(o);
                        label.choice for=(format!("{id}-{i}")) {
                            input type="checkbox" id=(format!("{id}-{i}")) name=(pointer) value=(text) checked[chosen.contains(&text)];
                            " " (text)
                        }
                    }
                }
            }
        } else {
            let text = match posted {
                Some(p) => p.to_owned(),
                None => schema["default"]
                    .as_array()
                    .map(|d| d.iter().map(scalar_text).collect::<Vec<_>>().join("\n"))
                    .unwrap_or_default(),
            };
            html! {
                textarea id=(id) name=(pointer) rows="3" required[required]
                    aria-invalid=[invalid] aria-describedby=[describedby.as_deref()] { (text) }
            }
        }
    } else if kind == "integer" || kind == "number" {
        let step = if kind == "integer" { "1" } else { "any" };
        let min = schema["minimum"].as_f64().map(|v| v.to_string());
        let max = schema["maximum"].as_f64().map(|v| v.to_string());
        html! {
            input type="number" id=(id) name=(pointer) value=(current) step=(step) min=[min] max=[max]
                required[required] aria-invalid=[invalid] aria-describedby=[describedby.as_deref()];
        }
    } else if kind == "string" {
        let long = schema["ui:widget"] == "textarea"
            || schema["maxLength"].as_u64().is_some_and(|n| n > 200);
        if long {
            html! {
                textarea id=(id) name=(pointer) rows="4" required[required]
                    aria-invalid=[invalid] aria-describedby=[describedby.as_deref()] { (current) }
            }
        } else {
            let input_type = if secret {
                "password"
            } else {
                match schema["format"].as_str() {
                    Some("email") => "email",
                    Some("uri") | Some("url") => "url",
                    Some("date") => "date",
                    _ => "text",
                }
            };
            let maxlength = schema["maxLength"].as_u64().map(|n| n.to_string());
            let pattern = schema["pattern"].as_str();
            let placeholder = schema["examples"]
                .as_array()
                .and_then(|e| e.first())
                .and_then(Value::as_str);
            html! {
                input type=(input_type) id=(id) name=(pointer) value=(current)
                    maxlength=[maxlength] pattern=[pattern] placeholder=[placeholder]
                    autocomplete=(if secret { "new-password" } else { "off" })
                    required[required] aria-invalid=[invalid] aria-describedby=[describedby.as_deref()];
            }
        }
    } else {
        let text = match posted {
            Some(p) => p.to_owned(),
            None => schema
                .get("default")
                .map(|d| serde_json::to_string_pretty(d).unwrap_or_default())
                .unwrap_or_default(),
        };
        html! {
            textarea.json id=(id) name=(pointer) rows="4" required[required]
                aria-invalid=[invalid] aria-describedby=[describedby.as_deref()] { (text) }
        }
    };
    html! {
        div class={"field" @if invalid.is_some() { " invalid" }} {
            label for=(id) {
                (label)
                @if required { span.req aria-hidden="true" { " *" } span.sr { " (required)" } }
            }
            @if let Some(d) = schema["description"].as_str() { p.hint id=(described) { (d) } }
            @if !errors.is_empty() {
                p.field-error id=(error_id) {
                    @for e in &errors { span { (e) } " " }
                }
            }
            (control)
        }
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn default_text(schema: &Value) -> Option<String> {
    match schema.get("default")? {
        Value::Null | Value::Array(_) | Value::Object(_) => None,
        v => Some(scalar_text(v)),
    }
}

/// Posted fields into the JSON value of an object schema. Problems the
/// browser's text cannot express (a number that is not one, JSON that does
/// not parse) are reported at the field.
pub fn read(
    schema: &Value,
    base: &str,
    state: &FormState,
    problems: &mut Vec<(String, String)>,
) -> Value {
    let mut out = Map::new();
    for (name, prop) in ordered(schema) {
        let pointer = format!("{base}/{}", escape_pointer(name));
        if let Some(v) = read_one(prop, &pointer, state, problems) {
            out.insert(name.clone(), v);
        }
    }
    Value::Object(out)
}

fn read_one(
    schema: &Value,
    pointer: &str,
    state: &FormState,
    problems: &mut Vec<(String, String)>,
) -> Option<Value> {
    let kind = type_of(schema);
    if kind == "object" && schema.get("properties").is_some() {
        let v = read(schema, pointer, state, problems);
        return (v.as_object().is_some_and(|m| !m.is_empty())).then_some(v);
    }
    if kind == "array" {
        let items = &schema["items"];
        if items["enum"].is_array() {
            if !state.values.contains_key(pointer) {
                return None;
            }
            let chosen: Vec<Value> = state
                .all(pointer)
                .iter()
                .filter(|v| !v.is_empty())
                .filter_map(|text| {
                    items["enum"]
                        .as_array()
                        .and_then(|opts| opts.iter().find(|o| scalar_text(o) == *text))
                        .cloned()
                })
                .collect();
            return Some(Value::Array(chosen));
        }
        let text = state.value(pointer)?;
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() {
            return None;
        }
        let item_kind = type_of(items);
        let mut list = Vec::new();
        for line in lines {
            match scalar(item_kind, line) {
                Ok(v) => list.push(v),
                Err(why) => {
                    problems.push((pointer.to_owned(), format!("{line:?}: {why}")));
                    return None;
                }
            }
        }
        return Some(Value::Array(list));
    }
    let text = state.value(pointer)?;
    if kind == "boolean" {
        return Some(Value::Bool(text == "true"));
    }
    if text.is_empty() {
        return None;
    }
    if let Some(options) = schema["enum"].as_array() {
        return Some(
            options
                .iter()
                .find(|o| scalar_text(o) == text)
                .cloned()
                .unwrap_or_else(|| Value::String(text.to_owned())),
        );
    }
    match kind {
        "string" | "integer" | "number" => match scalar(kind, text) {
            Ok(v) => Some(v),
            Err(why) => {
                problems.push((pointer.to_owned(), why));
                None
            }
        },
        _ => match serde_json::from_str(text) {
            Ok(v) => Some(v),
            Err(e) => {
                problems.push((pointer.to_owned(), format!("is not valid JSON: {e}")));
                None
            }
        },
    }
}

fn scalar(kind: &str, text: &str) -> Result<Value, String> {
    match kind {
        "integer" => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| "must be a whole number".to_owned()),
        "number" => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| "must be a number".to_owned()),
        "boolean" => Ok(Value::Bool(text == "true")),
        _ => Ok(Value::String(text.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn posted(pairs: &[(&str, &str)]) -> FormState {
        FormState::from_posted(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn reads_typed_values_and_skips_empty_optional_fields() {
        let schema = json!({
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "replicas": {"type": "integer"},
                "ratio": {"type": "number"},
                "public": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "envs": {"type": "array", "items": {"enum": ["dev", "prod"]}},
                "db": {"type": "object", "properties": {"size": {"enum": ["s", "m"]}}},
                "note": {"type": "string"}
            }
        });
        let state = posted(&[
            ("/name", "billing"),
            ("/replicas", "3"),
            ("/ratio", "0.5"),
            ("/public", "false"),
            ("/public", "true"),
            ("/tags", "a\n\n b \n"),
            ("/envs", ""),
            ("/envs", "prod"),
            ("/db/size", "m"),
            ("/note", ""),
        ]);
        let mut problems = Vec::new();
        let v = read(&schema, "", &state, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            v,
            json!({"name": "billing", "replicas": 3, "ratio": 0.5, "public": true,
                   "tags": ["a", "b"], "envs": ["prod"], "db": {"size": "m"}})
        );
    }

    #[test]
    fn a_number_that_is_not_one_is_a_problem_at_its_field() {
        let schema = json!({"type": "object", "properties": {"replicas": {"type": "integer"}}});
        let mut problems = Vec::new();
        read(
            &schema,
            "",
            &posted(&[("/replicas", "three")]),
            &mut problems,
        );
        assert_eq!(
            problems,
            vec![("/replicas".to_owned(), "must be a whole number".to_owned())]
        );
    }

    #[test]
    fn api_problems_land_on_their_fields() {
        let mut state = FormState::default();
        state.add_api_errors(
            &[
                ("/input/name".into(), "\"Bad\" does not match".into()),
                ("/input".into(), "\"owner\" is a required property".into()),
                ("/entity".into(), "no such entity".into()),
            ],
            "/input",
            "",
        );
        assert_eq!(
            state.errors,
            vec![
                ("/name".to_owned(), "\"Bad\" does not match".to_owned()),
                (
                    "/owner".to_owned(),
                    "\"owner\" is a required property".to_owned()
                ),
                ("/entity".to_owned(), "no such entity".to_owned()),
            ]
        );
    }

    #[test]
    fn ui_order_puts_named_fields_first_and_star_holds_the_rest() {
        let schema = json!({"properties": {"a": {}, "b": {}, "c": {}, "d": {}},
                            "ui:order": ["c", "*", "a"]});
        let names: Vec<&str> = ordered(&schema).iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["c", "b", "d", "a"]);
    }

    #[test]
    fn secrets_are_never_rendered_back() {
        let schema = json!({"type": "object", "properties": {"pw": {"type": "string", "format": "password"}}});
        let html = fields(&schema, "", &posted(&[("/pw", "hunter2")])).into_string();
        assert!(html.contains("type=\"password\""), "{html}");
        assert!(!html.contains("hunter2"), "{html}");
    }

    #[test]
    fn values_are_escaped() {
        let schema =
            json!({"type": "object", "properties": {"t": {"type": "string", "title": "<b>T</b>"}}});
        let html = fields(&schema, "", &posted(&[("/t", "\"><script>x</script>")])).into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
    }
}
