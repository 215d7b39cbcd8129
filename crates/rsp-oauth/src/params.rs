//! Form parameters as RFC 6749 §3.1 and §3.2 define them: a parameter sent without a value is treated as
//! omitted, unknown parameters are ignored, and a parameter must not be included more than once.

use crate::OAuthError;

/// The decoded parameters of one request.
#[derive(Debug, Default)]
pub struct FormParams(Vec<(String, String)>);

impl FormParams {
    /// Refuses a request in which any parameter appears twice, whatever its values.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Self, OAuthError> {
        for (index, (name, _)) in pairs.iter().enumerate() {
            if pairs.iter().skip(index + 1).any(|(other, _)| other == name) {
                return Err(OAuthError::invalid_request(format!("parameter {name} is repeated")));
            }
        }
        Ok(Self(pairs))
    }

    /// The value of `name`, or `None` when it is absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, v)| n == name && !v.is_empty()).map(|(_, v)| v.as_str())
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| OAuthError::invalid_request(format!("missing parameter {name}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    #[test]
    fn repeated_parameters_are_refused_and_empty_ones_are_absent() {
        assert!(FormParams::from_pairs(pairs(&[("scope", "a"), ("scope", "b")])).is_err());
        let params = FormParams::from_pairs(pairs(&[("scope", ""), ("foo", "bar")])).unwrap();
        assert_eq!(params.get("scope"), None);
        assert_eq!(params.get("foo"), Some("bar"));
    }
}
