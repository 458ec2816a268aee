//! Field errors of a form or a JSON body, gathered so that one answer lists every problem (PLATFORM.md §16:
//! `400 VALIDATION_ERROR` with `details.fields[{field, code, message}]`; a refused identifier keeps its DOMAIN code
//! and status 422 when it is the only kind of problem).

use serde_json::json;

use crate::rejection::Rejection;

#[derive(Debug, Default, Clone)]
pub struct Fields {
    errors: Vec<(String, &'static str, String, u16)>,
}

impl Fields {
    pub fn new() -> Fields {
        Fields::default()
    }

    pub fn add(&mut self, field: &str, code: &'static str, message: impl Into<String>) {
        self.errors.push((field.into(), code, message.into(), 400));
    }

    /// Keeps a DOMAIN rejection (identifier checks) as a field error.
    pub fn reject(&mut self, field: &str, r: Rejection) {
        self.errors.push((field.into(), r.code, r.message, r.status));
    }

    /// Runs a check and keeps its value, or records its rejection.
    pub fn take<T>(&mut self, field: &str, r: Result<T, Rejection>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.reject(field, e);
                None
            }
        }
    }

    pub fn text(&mut self, field: &str, value: &str, min: usize, max: usize) -> String {
        let v = value.trim().to_string();
        let n = v.chars().count();
        if n < min || n > max {
            let message = if min > 0 && n == 0 {
                "Ce champ est obligatoire.".to_string()
            } else {
                format!("{min} à {max} caractères attendus.")
            };
            self.add(field, if n == 0 { "OBLIGATOIRE" } else { "LONGUEUR_INVALIDE" }, message);
        }
        v
    }

    pub fn range(&mut self, field: &str, value: i64, min: i64, max: i64) {
        if value < min || value > max {
            self.add(field, "HORS_LIMITES", format!("Valeur attendue entre {min} et {max}."));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn into_result(self) -> Result<(), Rejection> {
        if self.errors.is_empty() {
            return Ok(());
        }
        let fields: Vec<_> =
            self.errors.iter().map(|(f, c, m, _)| json!({"field": f, "code": c, "message": m})).collect();
        let first = &self.errors[0];
        let business = self.errors.iter().all(|e| e.3 == 422);
        let r = if business {
            Rejection::new(first.1, 422, first.2.clone())
        } else {
            Rejection::new("VALIDATION_ERROR", 400, format!("Données invalides : {}", first.2))
        };
        Err(r.with_details(json!({ "fields": fields })))
    }
}

/// A reason (motif) of at least `min` characters once trimmed; `MOTIF_TROP_COURT` otherwise.
pub fn reason(text: &str, min: usize) -> Result<String, Rejection> {
    let r = text.trim();
    if r.chars().count() < min {
        return Err(Rejection::new(
            "MOTIF_TROP_COURT",
            422,
            format!("Le motif doit contenir au moins {min} caractères."),
        )
        .with_details(json!({"min": min})));
    }
    Ok(r.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_listed_once() {
        let mut f = Fields::new();
        let name = f.text("name", "  x ", 2, 120);
        assert_eq!(name, "x");
        f.range("leadTimeDays", 0, 1, 365);
        f.take("nif", crate::parties::nif("123"));
        let r = f.into_result().unwrap_err();
        assert_eq!((r.code, r.status), ("VALIDATION_ERROR", 400));
        assert_eq!(r.details["fields"].as_array().unwrap().len(), 3);
        assert_eq!(r.details["fields"][2]["code"], "NIF_INVALIDE");
    }

    #[test]
    fn identifier_problems_alone_keep_their_domain_code() {
        let mut f = Fields::new();
        f.take("nif", crate::parties::nif("000000000000000"));
        let r = f.into_result().unwrap_err();
        assert_eq!((r.code, r.status), ("NIF_INVALIDE", 422));
        assert!(Fields::new().into_result().is_ok());
    }
}
