//! Offline sync protocol v1 (PLATFORM.md §7; DOMAIN.md §12.3), the rules that need no database: the payload checksum,
//! the whole-batch limits, the vocabulary of actions with the shape of their payloads, what a re-pushed event answers,
//! and the retry worker's backoff.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::rejection::Rejection;

/// Events per push, and the serialized size of one payload (PLATFORM.md §7.1).
pub const MAX_EVENTS: usize = 100;
pub const MAX_PAYLOAD_BYTES: usize = 2 * 1024 * 1024;
/// After this many failed attempts the worker gives up: FAILED, technical (§7.3).
pub const MAX_ATTEMPTS: u32 = 10;

/// Lowercase hex SHA-256 of the RFC 8785 serialization of the payload (§7.1, normative).
pub fn checksum(payload: &Value) -> String {
    sha256_hex(crate::canonical::jcs(payload).as_bytes())
}

/// Lowercase hex SHA-256 of bytes (attachments are kept by it).
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12]) && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn invalid(message: String, details: Value) -> Rejection {
    Rejection::new("VALIDATION_ERROR", 400, message).with_details(details)
}

/// The checks of a whole batch, before anything is stored: 1 to 100 events, ids that are UUIDs and unique in the
/// batch, each payload at most 2 MiB once serialized. `events` = (client event id, serialized payload size).
pub fn check_batch(events: &[(&str, usize)]) -> Result<(), Rejection> {
    if events.is_empty() || events.len() > MAX_EVENTS {
        return Err(invalid(
            format!("Un lot contient de 1 à {MAX_EVENTS} événements ({} reçus).", events.len()),
            json!({"events": events.len(), "max": MAX_EVENTS}),
        ));
    }
    for (i, (id, size)) in events.iter().enumerate() {
        if !is_uuid(id) {
            return Err(invalid(format!("Identifiant d'événement invalide : {id}."), json!({"id": id})));
        }
        if events[..i].iter().any(|(other, _)| other.eq_ignore_ascii_case(id)) {
            return Err(invalid(format!("L'événement {id} figure deux fois dans le lot."), json!({"id": id})));
        }
        if *size > MAX_PAYLOAD_BYTES {
            return Err(Rejection::new(
                "PAYLOAD_TOO_LARGE",
                413,
                format!("L'événement {id} dépasse la taille permise (2 Mio)."),
            )
            .with_details(json!({"id": id, "bytes": size, "max": MAX_PAYLOAD_BYTES})));
        }
    }
    Ok(())
}

/// The JSON type a payload field must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Uuid,
    /// An integer within ±(2^53 − 1) (money in centimes, quantities in milli-units).
    Int,
    /// Any number (GPS coordinates).
    Number,
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339 timestamp.
    Instant,
    /// An array of objects checked by their own fields.
    Lines(&'static [Field]),
}

/// (name, kind, required)
type Field = (&'static str, Kind, bool);

const DELIVERED_LINE: &[Field] = &[("productId", Kind::Uuid, true), ("quantityDelivered", Kind::Int, true)];
const DRAFT_LINE: &[Field] =
    &[("productId", Kind::Uuid, true), ("quantity", Kind::Int, true), ("unitPriceHt", Kind::Int, false)];

/// The vocabulary v1 (§7.5): one action per device command, on one entity type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    DeliveryValidated,
    DeliveryDelivered,
    DeliveryCancelled,
    PaymentRecorded,
    InvoiceDraftCreated,
    ClientContactUpdated,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::DeliveryValidated,
        Action::DeliveryDelivered,
        Action::DeliveryCancelled,
        Action::PaymentRecorded,
        Action::InvoiceDraftCreated,
        Action::ClientContactUpdated,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Action::DeliveryValidated => "DELIVERY_VALIDATED",
            Action::DeliveryDelivered => "DELIVERY_DELIVERED",
            Action::DeliveryCancelled => "DELIVERY_CANCELLED",
            Action::PaymentRecorded => "PAYMENT_RECORDED",
            Action::InvoiceDraftCreated => "INVOICE_DRAFT_CREATED",
            Action::ClientContactUpdated => "CLIENT_CONTACT_UPDATED",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.code() == s)
    }

    /// What users read (the operators' list, the drivers' "Envois").
    pub fn label_fr(self) -> &'static str {
        match self {
            Action::DeliveryValidated => "Validation de BL",
            Action::DeliveryDelivered => "Preuve de livraison",
            Action::DeliveryCancelled => "Annulation de BL",
            Action::PaymentRecorded => "Encaissement",
            Action::InvoiceDraftCreated => "Brouillon de facture",
            Action::ClientContactUpdated => "Contact client",
        }
    }

    /// The entity type the action is about (the event's `entityType` must say the same).
    pub fn entity_type(self) -> &'static str {
        match self {
            Action::DeliveryValidated | Action::DeliveryDelivered | Action::DeliveryCancelled => "DELIVERY",
            Action::PaymentRecorded => "PAYMENT",
            Action::InvoiceDraftCreated => "INVOICE",
            Action::ClientContactUpdated => "CLIENT",
        }
    }

    fn fields(self) -> &'static [Field] {
        match self {
            // `qrToken` (scanned) or `mode: MANUAL` with the typed `reference` and a `note` (PLATFORM §16).
            Action::DeliveryValidated => &[
                ("qrToken", Kind::Text, false),
                ("mode", Kind::Text, false),
                ("reference", Kind::Text, false),
                ("note", Kind::Text, false),
                ("latitude", Kind::Number, false),
                ("longitude", Kind::Number, false),
                ("notes", Kind::Text, false),
            ],
            Action::DeliveryDelivered => &[
                ("recipientName", Kind::Text, true),
                ("signatureBase64", Kind::Text, true),
                ("photoJpegBase64", Kind::Text, false),
                ("deliveredAt", Kind::Instant, true),
                ("lines", Kind::Lines(DELIVERED_LINE), true),
            ],
            Action::DeliveryCancelled => &[("reason", Kind::Text, true)],
            Action::PaymentRecorded => &[
                ("invoiceId", Kind::Uuid, true),
                ("amount", Kind::Int, true),
                ("method", Kind::Text, true),
                ("date", Kind::Date, true),
                ("note", Kind::Text, false),
                ("chequeNumber", Kind::Text, false),
                ("bank", Kind::Text, false),
                ("chequeDate", Kind::Date, false),
                ("bankReference", Kind::Text, false),
            ],
            Action::InvoiceDraftCreated => &[
                ("clientId", Kind::Uuid, true),
                ("date", Kind::Date, true),
                ("paymentMethod", Kind::Text, true),
                ("lines", Kind::Lines(DRAFT_LINE), true),
            ],
            Action::ClientContactUpdated => &[
                ("phone", Kind::Text, false),
                ("address", Kind::Text, false),
                ("contactName", Kind::Text, false),
                ("email", Kind::Text, false),
            ],
        }
    }
}

const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

fn kind_ok(kind: Kind, v: &Value) -> bool {
    match kind {
        Kind::Text => v.is_string(),
        Kind::Uuid => v.as_str().is_some_and(is_uuid),
        Kind::Int => v.as_i64().is_some_and(|n| n.abs() <= MAX_SAFE_INTEGER),
        Kind::Number => v.as_f64().is_some_and(f64::is_finite),
        Kind::Date => v.as_str().is_some_and(|s| s.parse::<chrono::NaiveDate>().is_ok()),
        Kind::Instant => v.as_str().is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
        Kind::Lines(_) => v.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_object)),
    }
}

fn kind_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "un texte",
        Kind::Uuid => "un identifiant (UUID)",
        Kind::Int => "un entier",
        Kind::Number => "un nombre",
        Kind::Date => "une date AAAA-MM-JJ",
        Kind::Instant => "un horodatage RFC 3339",
        Kind::Lines(_) => "une liste de lignes non vide",
    }
}

/// Every problem of an object against its fields: missing, unknown, wrong type (paths like `lines[1].quantity`).
fn check_fields(prefix: &str, obj: &serde_json::Map<String, Value>, fields: &[Field], out: &mut Vec<Value>) {
    for (name, kind, required) in fields {
        let path = format!("{prefix}{name}");
        match obj.get(*name) {
            None | Some(Value::Null) if *required => out.push(json!({"field": path, "code": "OBLIGATOIRE",
                "message": "Ce champ est obligatoire."})),
            None | Some(Value::Null) => {}
            Some(v) if !kind_ok(*kind, v) => out.push(json!({"field": path, "code": "TYPE_INVALIDE",
                "message": format!("Valeur attendue : {}.", kind_label(*kind))})),
            Some(v) => {
                if let (Kind::Lines(line), Some(items)) = (kind, v.as_array()) {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(o) = item.as_object() {
                            check_fields(&format!("{path}[{i}]."), o, line, out);
                        }
                    }
                }
            }
        }
    }
    for key in obj.keys() {
        if !fields.iter().any(|(n, _, _)| n == key) {
            out.push(json!({"field": format!("{prefix}{key}"), "code": "CHAMP_INCONNU",
                "message": "Champ inconnu pour cette action."}));
        }
    }
}

/// Step 2 of §7.2: a known action on its entity type, with a payload of the right shape (every required field, no
/// unknown one, the right types). The refusal is stored FAILED `VALIDATION_ERROR` and answered REJECTED, final.
pub fn check_event(action: &str, entity_type: &str, payload: &Value) -> Result<Action, Rejection> {
    let Some(a) = Action::parse(action) else {
        return Err(invalid(format!("Action inconnue : {action}."), json!({"action": action})));
    };
    if a.entity_type() != entity_type {
        return Err(invalid(
            format!("L'action {action} porte sur {} (reçu : {entity_type}).", a.entity_type()),
            json!({"action": action, "entityType": entity_type, "expected": a.entity_type()}),
        ));
    }
    let Some(obj) = payload.as_object() else {
        return Err(invalid("Le contenu de l'événement doit être un objet JSON.".into(), json!({"action": action})));
    };
    let mut problems = Vec::new();
    check_fields("", obj, a.fields(), &mut problems);
    if a == Action::DeliveryValidated {
        let manual = obj.get("mode").and_then(Value::as_str);
        match (obj.get("qrToken"), manual) {
            (Some(_), None) => {}
            (None, Some("MANUAL" | "MANUEL")) => {
                for f in ["reference", "note"] {
                    if obj.get(f).is_none_or(Value::is_null) {
                        problems.push(json!({"field": f, "code": "OBLIGATOIRE",
                            "message": "Ce champ est obligatoire pour une validation manuelle."}));
                    }
                }
            }
            (Some(_), Some(_)) => problems.push(json!({"field": "mode", "code": "CHAMP_INCONNU",
                "message": "Un QR code scanné ne porte pas de mode."})),
            (None, Some(_)) => problems.push(json!({"field": "mode", "code": "TYPE_INVALIDE",
                "message": "Valeur attendue : MANUAL."})),
            (None, None) => problems.push(json!({"field": "qrToken", "code": "OBLIGATOIRE",
                "message": "QR code scanné (qrToken) ou validation manuelle (mode MANUAL, reference, note)."})),
        }
    }
    if a == Action::ClientContactUpdated && obj.is_empty() {
        problems.push(json!({"field": "", "code": "OBLIGATOIRE",
            "message": "Au moins un champ parmi phone, address, contactName, email."}));
    }
    if problems.is_empty() {
        Ok(a)
    } else {
        Err(invalid(format!("Données invalides pour {action}."), json!({"action": action, "fields": problems})))
    }
}

/// What a stored event is, for step 1 of §7.2.
/// The message a device shows when its validation came second (§7.5, first wins): who validated first and when, in
/// Algiers time — "Livraison déjà validée le 14/03/2025 à 10:02 par Karim Benali."
pub fn deja_validee_message(validated_at: Option<i64>, by: Option<&str>) -> String {
    let when = validated_at.map(|t| crate::format::datetime_algiers(t).replacen(' ', " à ", 1)).unwrap_or_default();
    format!("Livraison déjà validée le {when} par {}.", by.unwrap_or("?"))
}

/// `24h`, `7d`, `90m` → a duration (the operators' `--since` and the admin list's `since`); `None` otherwise.
pub fn parse_since(s: &str) -> Option<chrono::Duration> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: i64 = n.parse().ok().filter(|n| *n > 0)?;
    match unit {
        "m" => Some(chrono::Duration::minutes(n)),
        "h" => Some(chrono::Duration::hours(n)),
        "d" => Some(chrono::Duration::days(n)),
        _ => None,
    }
}

/// `1.4.0` → (1, 4, 0); missing parts are 0 (`1.4` = `1.4.0`); anything else is not a version.
pub fn version_parts(v: &str) -> Option<(u64, u64, u64)> {
    let mut parts = v.trim().split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next().unwrap_or(Some(0))?;
    let patch = parts.next().unwrap_or(Some(0))?;
    parts.next().is_none().then_some((major, minor, patch))
}

/// Whether a device's app version is below the minimum the server asks (`426 APP_VERSION_UNSUPPORTED`); an
/// unreadable device version counts as too old.
pub fn app_too_old(app_version: &str, minimum: &str) -> bool {
    match (version_parts(app_version), version_parts(minimum)) {
        (Some(a), Some(m)) => a < m,
        (None, Some(_)) => true,
        _ => false,
    }
}

/// A driver acts only on the BLs assigned to them (an unassigned BL is open to any driver); ADMIN acts on any.
pub fn check_assigned(is_admin: bool, driver: Option<&str>, user: &str, reference: &str) -> Result<(), Rejection> {
    match driver {
        Some(d) if !is_admin && d != user => {
            Err(Rejection::new("NOT_ASSIGNED", 422, format!("Le BL {reference} est attribué à un autre livreur."))
                .with_details(json!({"reference": reference})))
        }
        _ => Ok(()),
    }
}

/// The quantities a driver says were delivered: per product, at most what the BL plans (`planned` = product id →
/// milli-units); a product the BL does not carry is refused too.
pub fn check_delivered(planned: &[(String, i64)], delivered: &[(String, i64)]) -> Result<(), Rejection> {
    for (product, qty) in delivered {
        let plan: i64 = planned.iter().filter(|(p, _)| p.eq_ignore_ascii_case(product)).map(|(_, q)| q).sum();
        if *qty < 0 || *qty > plan {
            return Err(Rejection::new(
                "QUANTITY_EXCEEDS_PLANNED",
                422,
                format!("Quantité livrée supérieure à la quantité prévue sur le BL ({qty} > {plan} millièmes)."),
            )
            .with_details(json!({"productId": product, "planned": plan, "delivered": qty})));
        }
    }
    Ok(())
}

/// Last writer wins per field (§7.5 `CLIENT_CONTACT_UPDATED`): an event changes a field unless that field was last
/// set by a later event. Equal times: the event received later wins.
pub fn field_wins(last_set: Option<chrono::DateTime<chrono::Utc>>, occurred_at: chrono::DateTime<chrono::Utc>) -> bool {
    last_set.is_none_or(|t| occurred_at >= t)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Pending,
    Applied,
    Acked,
    Failed,
}

impl Stored {
    pub fn parse(s: &str) -> Option<Stored> {
        match s {
            "PENDING" => Some(Stored::Pending),
            "APPLIED" => Some(Stored::Applied),
            "ACKED" => Some(Stored::Acked),
            "FAILED" => Some(Stored::Failed),
            _ => None,
        }
    }
}

/// The answer to an event id the server already holds.
/// A stored status as users read it (UI.md §2 status words) and its tone.
pub fn status_fr(status: &str) -> (&'static str, &'static str) {
    match status {
        "PENDING" => ("En attente", "ambre"),
        "APPLIED" => ("Appliqué", "vert"),
        "ACKED" => ("Acquitté", "vert"),
        _ => ("En échec", "rouge"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// Same id, other payload: `REJECTED IDEMPOTENCE_CONFLIT`, nothing stored.
    Conflict,
    /// Already applied: `DUPLICATE` with the stored server reference.
    Duplicate,
    /// Already failed: `REJECTED` with the stored code and message.
    Rejected,
    /// Pending and due: claim it and attempt now.
    AttemptNow,
    /// Pending, not due yet: `DEFERRED`, retryable.
    Deferred,
}

pub fn on_known(stored: Stored, same_payload: bool, due: bool) -> Known {
    if !same_payload {
        return Known::Conflict;
    }
    match stored {
        Stored::Applied | Stored::Acked => Known::Duplicate,
        Stored::Failed => Known::Rejected,
        Stored::Pending if due => Known::AttemptNow,
        Stored::Pending => Known::Deferred,
    }
}

/// The delay before attempt `failed + 1` after `failed` failed attempts (1-based): min(5 s × 2^(n−1), 30 min), moved by
/// `jitter_permille` ∈ [−200, 200] (± 20 %); `None` after the 10th attempt (the event becomes FAILED, technical).
pub fn backoff_ms(failed: u32, jitter_permille: i64) -> Option<i64> {
    if failed == 0 {
        return Some(0);
    }
    if failed >= MAX_ATTEMPTS {
        return None;
    }
    let base = (5_000i64 << (failed - 1).min(20)).min(30 * 60 * 1000);
    Some(base * (1000 + jitter_permille.clamp(-200, 200)) / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = include_str!("../../../tests/vectors/sync-checksum.json");

    #[test]
    fn checksums_follow_the_shared_vectors() {
        let doc: Value = serde_json::from_str(VECTORS).unwrap();
        let vectors = doc["vectors"].as_array().unwrap();
        assert!(vectors.len() >= 6);
        for v in vectors {
            let name = v["name"].as_str().unwrap();
            // The payload as a device sends it, parsed the way the server parses a push.
            let payload: Value = serde_json::from_str(v["payloadText"].as_str().unwrap()).unwrap();
            assert_eq!(crate::canonical::jcs(&payload), v["canonical"].as_str().unwrap(), "{name}");
            assert_eq!(checksum(&payload), v["checksum"].as_str().unwrap(), "{name}");
        }
        let platform = json!({"invoiceId": "0195a3c2-0000-7000-8000-000000000001", "amount": 150000,
                              "method": "ESPECES", "note": "réglé"});
        assert_eq!(checksum(&platform), "abc9c37e5a0b97c7ac8a86df8b7ecdb50f496a6e99060f8ac4d1aa08b072c2cd");
    }

    #[test]
    fn a_validation_is_scanned_or_manual_with_its_reference_and_note() {
        assert!(check_event("DELIVERY_VALIDATED", "DELIVERY", &json!({"qrToken": "MCG:DLV:x"})).is_ok());
        let manual = json!({"mode": "MANUAL", "reference": "LIV-2025-00154", "note": "QR abîmé"});
        assert!(check_event("DELIVERY_VALIDATED", "DELIVERY", &manual).is_ok());
        let fields = |p: Value| {
            let e = check_event("DELIVERY_VALIDATED", "DELIVERY", &p).unwrap_err();
            e.details["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["field"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(fields(json!({"mode": "MANUAL"})), ["reference", "note"]);
        assert_eq!(fields(json!({})), ["qrToken"]);
        assert_eq!(fields(json!({"qrToken": "MCG", "mode": "MANUAL"})), ["mode"]);
        assert_eq!(fields(json!({"mode": "AUTO", "reference": "LIV-2025-00154"})), ["mode"]);
    }

    #[test]
    fn a_driver_acts_on_their_own_bls_and_delivers_at_most_the_plan() {
        assert!(check_assigned(false, Some("karim"), "karim", "LIV-2025-00001").is_ok());
        assert!(check_assigned(false, None, "karim", "LIV-2025-00001").is_ok());
        assert!(check_assigned(true, Some("karim"), "admin", "LIV-2025-00001").is_ok());
        let e = check_assigned(false, Some("karim"), "yacine", "LIV-2025-00001").unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("NOT_ASSIGNED", "Le BL LIV-2025-00001 est attribué à un autre livreur.")
        );
        let plan = [("gouda".to_string(), 24_000), ("fondu".to_string(), 10_000)];
        assert!(check_delivered(&plan, &[("gouda".into(), 24_000), ("fondu".into(), 9_000)]).is_ok());
        let e = check_delivered(&plan, &[("gouda".into(), 24_001)]).unwrap_err();
        assert_eq!((e.code, e.details["planned"].as_i64()), ("QUANTITY_EXCEEDS_PLANNED", Some(24_000)));
        assert_eq!(check_delivered(&plan, &[("edam".into(), 1)]).unwrap_err().code, "QUANTITY_EXCEEDS_PLANNED");
    }

    #[test]
    fn a_second_validation_names_the_first_validator_and_time() {
        let at = chrono::DateTime::parse_from_rfc3339("2025-03-14T09:02:10Z").unwrap().timestamp();
        assert_eq!(
            deja_validee_message(Some(at), Some("Karim Benali")),
            "Livraison déjà validée le 14/03/2025 à 10:02 par Karim Benali."
        );
    }

    #[test]
    fn since_reads_minutes_hours_and_days() {
        assert_eq!(parse_since("24h"), Some(chrono::Duration::hours(24)));
        assert_eq!(parse_since("7d"), Some(chrono::Duration::days(7)));
        assert_eq!(parse_since("90m"), Some(chrono::Duration::minutes(90)));
        assert_eq!(parse_since("0h"), None);
        assert_eq!(parse_since("24"), None);
        assert_eq!(parse_since(""), None);
    }

    #[test]
    fn versions_compare_part_by_part() {
        assert_eq!(version_parts("1.4.0"), Some((1, 4, 0)));
        assert_eq!(version_parts("2"), Some((2, 0, 0)));
        assert_eq!(version_parts("1.x"), None);
        assert!(app_too_old("1.3.9", "1.4.0"));
        assert!(!app_too_old("1.4", "1.4.0"));
        assert!(!app_too_old("1.10.0", "1.4.0"));
        assert!(app_too_old("dev", "1.4.0"));
    }

    #[test]
    fn the_later_contact_change_wins_field_by_field() {
        let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc);
        assert!(field_wins(None, t("2025-03-14T09:00:00Z")));
        assert!(field_wins(Some(t("2025-03-14T09:00:00Z")), t("2025-03-14T09:00:00Z")));
        assert!(field_wins(Some(t("2025-03-14T09:00:00Z")), t("2025-03-14T09:00:01Z")));
        assert!(!field_wins(Some(t("2025-03-14T09:00:01Z")), t("2025-03-14T09:00:00Z")));
    }

    fn id(n: u32) -> String {
        format!("0195a3c3-0000-7000-8000-{n:012}")
    }

    #[test]
    fn a_batch_holds_one_to_a_hundred_unique_events_of_at_most_two_mebibytes() {
        let ids: Vec<String> = (0..101).map(id).collect();
        let batch = |n: usize| ids[..n].iter().map(|i| (i.as_str(), 10)).collect::<Vec<_>>();
        assert!(check_batch(&batch(1)).is_ok());
        assert!(check_batch(&batch(100)).is_ok());
        for n in [0, 101] {
            let e = check_batch(&batch(n)).unwrap_err();
            assert_eq!((e.code, e.status), ("VALIDATION_ERROR", 400), "{n} events");
        }
        let twice = [(ids[0].as_str(), 10), (ids[1].as_str(), 10), (ids[0].as_str(), 10)];
        let e = check_batch(&twice).unwrap_err();
        assert_eq!(e.message, format!("L'événement {} figure deux fois dans le lot.", ids[0]));
        assert_eq!(check_batch(&[("pas-un-uuid", 1)]).unwrap_err().code, "VALIDATION_ERROR");
        assert!(check_batch(&[(ids[0].as_str(), MAX_PAYLOAD_BYTES)]).is_ok());
        let e = check_batch(&[(ids[0].as_str(), MAX_PAYLOAD_BYTES + 1)]).unwrap_err();
        assert_eq!((e.code, e.status), ("PAYLOAD_TOO_LARGE", 413));
    }

    fn fields_of(e: &Rejection) -> Vec<(String, String)> {
        e.details["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| (f["field"].as_str().unwrap().to_string(), f["code"].as_str().unwrap().to_string()))
            .collect()
    }

    #[test]
    fn payloads_are_checked_against_the_vocabulary() {
        let payment = json!({"invoiceId": id(1), "amount": 150_000, "method": "ESPECES", "date": "2025-03-14",
                             "note": "réglé"});
        assert_eq!(check_event("PAYMENT_RECORDED", "PAYMENT", &payment).unwrap(), Action::PaymentRecorded);
        // Unknown action, wrong entity type, not an object.
        assert_eq!(
            check_event("PAYMENT_DELETED", "PAYMENT", &payment).unwrap_err().message,
            "Action inconnue : PAYMENT_DELETED."
        );
        assert!(
            check_event("PAYMENT_RECORDED", "DELIVERY", &payment).unwrap_err().message.contains("porte sur PAYMENT")
        );
        assert_eq!(check_event("DELIVERY_CANCELLED", "DELIVERY", &json!([1])).unwrap_err().code, "VALIDATION_ERROR");
        // Missing, extra and mistyped fields are all reported.
        let bad = json!({"invoiceId": "x", "amount": 1.5, "method": "ESPECES", "date": "14/03/2025", "surplus": true});
        let e = check_event("PAYMENT_RECORDED", "PAYMENT", &bad).unwrap_err();
        assert_eq!(
            fields_of(&e),
            vec![
                ("invoiceId".into(), "TYPE_INVALIDE".into()),
                ("amount".into(), "TYPE_INVALIDE".into()),
                ("date".into(), "TYPE_INVALIDE".into()),
                ("surplus".into(), "CHAMP_INCONNU".into()),
            ]
        );
        let e = check_event("PAYMENT_RECORDED", "PAYMENT", &json!({"amount": 9_007_199_254_740_992i64})).unwrap_err();
        assert!(fields_of(&e).contains(&("amount".into(), "TYPE_INVALIDE".into())), "beyond 2^53 − 1");
        assert!(fields_of(&e).contains(&("invoiceId".into(), "OBLIGATOIRE".into())));
        // Lines are checked one by one; GPS may be decimals.
        let delivered = json!({"recipientName": "Mourad", "signatureBase64": "iVBORw0KGgo=",
            "deliveredAt": "2025-03-14T10:02:00.000Z",
            "lines": [{"productId": id(2), "quantityDelivered": 24_000}, {"productId": id(3)}]});
        let e = check_event("DELIVERY_DELIVERED", "DELIVERY", &delivered).unwrap_err();
        assert_eq!(fields_of(&e), vec![("lines[1].quantityDelivered".into(), "OBLIGATOIRE".into())]);
        let validated = json!({"qrToken": "MCG:DLV:…", "latitude": 36.7538, "longitude": 3.0588});
        assert_eq!(check_event("DELIVERY_VALIDATED", "DELIVERY", &validated).unwrap(), Action::DeliveryValidated);
        assert!(check_event("CLIENT_CONTACT_UPDATED", "CLIENT", &json!({})).is_err(), "one field at least");
        assert!(check_event("CLIENT_CONTACT_UPDATED", "CLIENT", &json!({"phone": "0661234567"})).is_ok());
        for a in Action::ALL {
            assert_eq!(Action::parse(a.code()), Some(a));
        }
    }

    #[test]
    fn a_known_event_answers_from_what_is_stored() {
        assert_eq!(on_known(Stored::Applied, false, true), Known::Conflict, "another payload under the same id");
        assert_eq!(on_known(Stored::Applied, true, false), Known::Duplicate);
        assert_eq!(on_known(Stored::Acked, true, true), Known::Duplicate);
        assert_eq!(on_known(Stored::Failed, true, true), Known::Rejected);
        assert_eq!(on_known(Stored::Pending, true, true), Known::AttemptNow);
        assert_eq!(on_known(Stored::Pending, true, false), Known::Deferred);
        assert_eq!(Stored::parse("ACKED"), Some(Stored::Acked));
        assert_eq!(Stored::parse("DONE"), None);
    }

    #[test]
    fn the_worker_backs_off_five_seconds_doubling_to_thirty_minutes_then_gives_up() {
        let plain: Vec<Option<i64>> = (1..=10).map(|n| backoff_ms(n, 0)).collect();
        assert_eq!(
            plain,
            vec![
                Some(5_000),
                Some(10_000),
                Some(20_000),
                Some(40_000),
                Some(80_000),
                Some(160_000),
                Some(320_000),
                Some(640_000),
                Some(1_280_000),
                None
            ]
        );
        assert_eq!(backoff_ms(0, 0), Some(0));
        assert_eq!(backoff_ms(1, 200), Some(6_000), "+20 %");
        assert_eq!(backoff_ms(1, -200), Some(4_000), "−20 %");
        assert_eq!(backoff_ms(1, 999), Some(6_000), "jitter clamped");
        // The ceiling: the 30-minute cap would bite from the 10th attempt on, which is the last.
        assert!((1..MAX_ATTEMPTS).all(|n| backoff_ms(n, 200).unwrap() <= 36 * 60 * 1000));
    }
}
