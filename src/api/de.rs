//! Tolerant decoding of the host's JSON values.
//!
//! Real hosts send numbers as JSON strings (`"1253"`), as numbers, as `null`
//! or as `""`, and booleans as `"0"`/`"1"`. These helpers read all of those.
//! This module owns value-level leniency only; it never decides what a missing
//! value means for sync (callers do).

use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// Reads an optional unsigned integer from a number, a numeric string, `""` or `null`.
pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an unsigned integer, a numeric string or null")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v).map(Some).map_err(|_| {
                E::custom(format!(
                    "negative value {v} where a count or id was expected"
                ))
            })
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v >= 0.0 && v.fract() == 0.0 && v < 1.8e19 {
                Ok(Some(v as u64))
            } else {
                Err(E::custom(format!("{v} is not an unsigned integer")))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let t = v.trim();
            if t.is_empty() || t.eq_ignore_ascii_case("null") {
                return Ok(None);
            }
            t.parse::<u64>()
                .map(Some)
                .map_err(|_| E::custom(format!("{v:?} is not an unsigned integer")))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(u64::from(v)))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(V)
        }
    }
    d.deserialize_any(V)
}

/// Reads an optional string from a string, a number (rendered as text) or `null`.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string, a number or null")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(V)
        }
    }
    d.deserialize_any(V)
}

/// Reads a listing's `data`: an object, or `[]` / `null` for an empty
/// folder (PHP servers); decoded as it is read, never held as a `Value`.
pub(crate) fn listing_data<'de, D>(d: D) -> Result<crate::api::types::RawListing, D::Error>
where
    D: Deserializer<'de>,
{
    use crate::api::types::RawListing;
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = RawListing;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a listing object, [] or null")
        }
        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<RawListing, A::Error> {
            use serde::Deserialize;
            RawListing::deserialize(de::value::MapAccessDeserializer::new(map))
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawListing, A::Error> {
            match seq.next_element::<de::IgnoredAny>()? {
                None => Ok(RawListing::default()),
                Some(_) => Err(de::Error::custom("a listing that is a non-empty array")),
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<RawListing, E> {
            Ok(RawListing::default())
        }
        fn visit_none<E: de::Error>(self) -> Result<RawListing, E> {
            Ok(RawListing::default())
        }
    }
    d.deserialize_any(V)
}

/// Reads an optional object where PHP servers may send `[]`, `""`, `false`
/// or `null` for "none".
pub fn opt_object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::Deserialize;
    let v = serde_json::Value::deserialize(d)?;
    match v {
        serde_json::Value::Object(_) => serde_json::from_value(v)
            .map(Some)
            .map_err(de::Error::custom),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    struct O {
        #[serde(default, deserialize_with = "super::opt_object")]
        o: Option<std::collections::BTreeMap<String, u8>>,
    }

    #[test]
    fn php_empty_objects() {
        for j in [
            r#"{"o":[]}"#,
            r#"{"o":null}"#,
            r#"{"o":""}"#,
            r#"{"o":false}"#,
            "{}",
        ] {
            assert!(serde_json::from_str::<O>(j).unwrap().o.is_none(), "{j}");
        }
        assert_eq!(
            serde_json::from_str::<O>(r#"{"o":{"a":1}}"#)
                .unwrap()
                .o
                .unwrap()["a"],
            1
        );
    }

    #[derive(Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "super::opt_u64")]
        n: Option<u64>,
        #[serde(default, deserialize_with = "super::opt_string")]
        s: Option<String>,
    }

    fn parse(j: &str) -> T {
        serde_json::from_str(j).unwrap()
    }

    #[test]
    fn numbers_in_every_shape() {
        assert_eq!(parse(r#"{"n":"1253"}"#).n, Some(1253));
        assert_eq!(parse(r#"{"n":1253}"#).n, Some(1253));
        assert_eq!(parse(r#"{"n":" 7 "}"#).n, Some(7));
        assert_eq!(parse(r#"{"n":null}"#).n, None);
        assert_eq!(parse(r#"{"n":""}"#).n, None);
        assert_eq!(parse(r#"{}"#).n, None);
        assert_eq!(parse(r#"{"n":12.0}"#).n, Some(12));
        assert!(serde_json::from_str::<T>(r#"{"n":"abc"}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"n":-3}"#).is_err());
    }

    #[test]
    fn strings_in_every_shape() {
        assert_eq!(parse(r#"{"s":"x"}"#).s.as_deref(), Some("x"));
        assert_eq!(parse(r#"{"s":158642}"#).s.as_deref(), Some("158642"));
        assert_eq!(parse(r#"{"s":null}"#).s, None);
    }
}
