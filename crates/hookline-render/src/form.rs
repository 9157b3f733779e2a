//! `application/x-www-form-urlencoded` bodies: the standard body flattened
//! with bracket keys, as PHP and Rails read them, so a receiver built on
//! either gets the nesting back.

use serde_json::Value;

/// Fields of `value` with bracket keys, in key order (sorted: the same
/// body always encodes to the same bytes): `data[contact][email]`,
/// `data[tags][0]`. Scalars are their text (`null` is empty); an empty
/// object or array yields no field, like a browser form with no inputs.
pub fn flatten(value: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                walk(key.clone(), value, &mut out);
            }
        }
        other => out.push((String::new(), scalar(other))),
    }
    out
}

fn walk(prefix: String, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                walk(format!("{prefix}[{key}]"), value, out);
            }
        }
        Value::Array(items) => {
            for (index, value) in items.iter().enumerate() {
                walk(format!("{prefix}[{index}]"), value, out);
            }
        }
        other => out.push((prefix, scalar(other))),
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The encoded body (or query string) of `fields`, in their order.
pub fn form_body<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in fields {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nested_objects_and_arrays_get_bracket_keys() {
        let body = json!({"type": "lead.created", "data": {"contact": {"email": "ana@example.com"},
            "tags": ["hot", "web"], "score": 7, "vip": true, "note": null}});
        let fields = flatten(&body);
        let as_pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            as_pairs,
            vec![
                ("data[contact][email]", "ana@example.com"),
                ("data[note]", ""),
                ("data[score]", "7"),
                ("data[tags][0]", "hot"),
                ("data[tags][1]", "web"),
                ("data[vip]", "true"),
                ("type", "lead.created"),
            ]
        );
    }

    #[test]
    fn encoding_escapes_brackets_spaces_and_ampersands() {
        let body = form_body([("data[name]", "Ana & Bo"), ("q", "a=b")]);
        assert_eq!(body, "data%5Bname%5D=Ana+%26+Bo&q=a%3Db");
    }
}
