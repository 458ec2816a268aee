//! A command refused by a business rule (DOMAIN.md §21): the code, its HTTP status, the French message and details.

use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub code: &'static str,
    pub status: u16,
    pub message: String,
    pub details: Value,
}

impl Rejection {
    pub fn new(code: &'static str, status: u16, message: impl Into<String>) -> Rejection {
        Rejection { code, status, message: message.into(), details: json!({}) }
    }

    pub fn with_details(mut self, details: Value) -> Rejection {
        self.details = details;
        self
    }

    pub fn acces_refuse() -> Rejection {
        Rejection::new("ACCES_REFUSE", 403, "Vous n'avez pas les droits pour cette action.")
    }

    pub fn non_trouve(objet: &str) -> Rejection {
        Rejection::new("NON_TROUVE", 404, format!("{objet} introuvable."))
    }

    pub fn dernier_admin() -> Rejection {
        Rejection::new("DERNIER_ADMIN", 409, "Impossible : c'est le dernier administrateur actif.")
    }

    pub fn email_invalide() -> Rejection {
        Rejection::new("EMAIL_INVALIDE", 422, "Adresse e-mail invalide.")
    }

    pub fn mot_de_passe_faible(failed: &[&str]) -> Rejection {
        Rejection::new(
            "MOT_DE_PASSE_FAIBLE",
            422,
            "Mot de passe trop faible : 12 caractères minimum avec majuscule, minuscule, chiffre et caractère spécial.",
        )
        .with_details(json!({ "failed": failed }))
    }

    pub fn motif_obligatoire(min: usize) -> Rejection {
        Rejection::new("MOTIF_OBLIGATOIRE", 422, format!("Un motif d'au moins {min} caractères est obligatoire."))
            .with_details(json!({ "min": min }))
    }

    pub fn transition_invalide(de: &str, vers: &str) -> Rejection {
        Rejection::new("TRANSITION_INVALIDE", 409, format!("Transition impossible de {de} vers {vers}."))
            .with_details(json!({ "de": de, "vers": vers }))
    }
}
