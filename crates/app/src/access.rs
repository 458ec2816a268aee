//! Who may call what: the one table every route of the product is declared in (PLATFORM.md §2.2 step 7, DOMAIN.md
//! §2.2). The guard refuses a route missing from it to everyone; the OpenAPI document lists each API route's roles
//! from it; the navigation menu of each role is built from its page entries, so a menu never offers a page the role
//! cannot open.

use domain::identity::Access::{self, AnySession, Public, Roles};
use domain::identity::Role::{self, Admin, Appro, Commercial, Comptable, Production};

pub struct Route {
    pub method: &'static str,
    /// The router's path template (`/api/admin/users/{id}`).
    pub path: &'static str,
    pub access: Access,
    /// `(section, label)` when the page appears in the navigation.
    pub nav: Option<(&'static str, &'static str)>,
}

const fn r(method: &'static str, path: &'static str, access: Access) -> Route {
    Route { method, path, access, nav: None }
}

const fn page(path: &'static str, access: Access, section: &'static str, label: &'static str) -> Route {
    Route { method: "GET", path, access, nav: Some((section, label)) }
}

const ADMIN: Access = Roles(&[Admin]);
const AUDIT_READERS: Access = Roles(&[Admin, Comptable]);
// DOMAIN.md §2.2, capabilities 4, 5, 7 and 9.
const MP_READERS: Access = Roles(&[Admin, Appro, Production, Comptable]);
const MP_WRITERS: Access = Roles(&[Admin, Appro]);
const PF_READERS: Access = Roles(&[Admin, Appro, Production, Commercial, Comptable]);
const SUPPLIER_READERS: Access = Roles(&[Admin, Appro, Comptable]);
const SUPPLIER_WRITERS: Access = Roles(&[Admin, Appro]);
const CLIENT_READERS: Access = Roles(&[Admin, Commercial, Comptable]);
const CLIENT_WRITERS: Access = Roles(&[Admin, Commercial]);
// Capability 13: receptions W ADMIN, APPRO; R− PRODUCTION; R COMPTABLE.
const RECEPTION_READERS: Access = Roles(&[Admin, Appro, Production, Comptable]);
// Capabilities 11–12: purchase orders W ADMIN, APPRO; R− PRODUCTION; R COMPTABLE; cancellation ADMIN only.
const BC_READERS: Access = Roles(&[Admin, Appro, Production, Comptable]);
// Capabilities 15–16: recipes and production orders W ADMIN, PRODUCTION; R− APPRO (no costs); R COMPTABLE.
const PRODUCTION_READERS: Access = Roles(&[Admin, Appro, Production, Comptable]);
const PRODUCTION_WRITERS: Access = Roles(&[Admin, Production]);
// Capabilities 17–23: lots are read by every role (COMMERCIAL: PF lots only, filtered by the handler); QC release by
// ADMIN and PRODUCTION; manual block by ADMIN; losses by ADMIN, APPRO (MP) and PRODUCTION (PF); FEFO simulation by
// all but COMPTABLE.
const LOT_READERS: Access = Roles(&[Admin, Appro, Production, Commercial, Comptable]);
const QC: Access = Roles(&[Admin, Production]);
const LOSS_WRITERS: Access = Roles(&[Admin, Appro, Production]);
const FEFO_READERS: Access = Roles(&[Admin, Appro, Production, Commercial]);
// Capabilities 24–25: counts declared by ADMIN, APPRO, PRODUCTION; validated or rejected by ADMIN, COMPTABLE.
const COUNT_READERS: Access = Roles(&[Admin, Appro, Production, Comptable]);
const COUNT_DECLARERS: Access = Roles(&[Admin, Appro, Production]);
const COUNT_VALIDATORS: Access = Roles(&[Admin, Comptable]);
// UI.md row 38: losses read by ADMIN, APPRO (MP), PRODUCTION (PF), COMPTABLE; the handler filters by kind.
const LOSS_READERS: Access = Roles(&[Admin, Appro, Production, Comptable]);
// Company settings and référentiels: read by every role, changed by ADMIN (DOMAIN.md §3.1, UI.md rows 21, 88).
// Capabilities 41–42: the purchase-order PDF for ADMIN, APPRO and COMPTABLE; lot labels for ADMIN, APPRO, PRODUCTION.
const BC_PRINTERS: Access = Roles(&[Admin, Appro, Comptable]);
const LABEL_PRINTERS: Access = Roles(&[Admin, Appro, Production]);
const EVERYONE: Access = Roles(&[Admin, Appro, Production, Commercial, Comptable]);

// Capabilities 6, 26–33: price lists W ADMIN, R COMMERCIAL, COMPTABLE; invoices, credit-note drafts, payments and
// deliveries W ADMIN, COMMERCIAL, R COMPTABLE; credit-note validation, payment cancellation and refunds ADMIN.
const PRICE_LIST_READERS: Access = Roles(&[Admin, Commercial, Comptable]);
const SALES_READERS: Access = Roles(&[Admin, Commercial, Comptable]);
const SALES_WRITERS: Access = Roles(&[Admin, Commercial]);

pub const ROUTES: &[Route] = &[
    // Platform. Diagnostics are public routes whose handlers demand an allow-listed address or an ADMIN token.
    r("GET", "/api/health", Public),
    r("GET", "/api/health/ready", Public),
    r("GET", "/api/health/detailed", Public),
    r("GET", "/api/system/jobs", Public),
    r("GET", "/api/openapi.json", Public),
    r("GET", "/metrics", Public),
    r("GET", "/assets/{hash}/{*path}", Public),
    // Sessions (PLATFORM.md §4.1).
    r("POST", "/api/auth/login", Public),
    r("POST", "/api/auth/refresh", Public),
    r("POST", "/api/auth/logout", AnySession),
    r("GET", "/api/auth/me", AnySession),
    r("POST", "/api/auth/change-password", AnySession),
    // Devices (PLATFORM.md §4.5).
    r("POST", "/api/devices/register", AnySession),
    r("GET", "/api/admin/devices", ADMIN),
    r("POST", "/api/admin/devices/{id}/revoke", ADMIN),
    r("POST", "/api/admin/devices/{id}/reactivate", ADMIN),
    // PLATFORM.md §7: device sessions of any role (the handler asks for a registered, active device); each pushed
    // action then follows its own route's roles.
    r("POST", "/api/sync/push", AnySession),
    r("GET", "/api/sync/pull", AnySession),
    r("POST", "/api/sync/bootstrap", AnySession),
    r("GET", "/api/sync/status", AnySession),
    r("POST", "/api/sync/ack", AnySession),
    r("GET", "/api/admin/sync/events", ADMIN),
    r("POST", "/api/admin/sync/events/{id}/retry", ADMIN),
    r("POST", "/api/admin/sync/events/retry", ADMIN),
    // Users (DOMAIN.md §2.2 capability 1).
    r("GET", "/api/admin/users", ADMIN),
    r("POST", "/api/admin/users", ADMIN),
    r("GET", "/api/admin/users/{id}", ADMIN),
    r("PATCH", "/api/admin/users/{id}", ADMIN),
    r("POST", "/api/admin/users/{id}/deactivate", ADMIN),
    r("POST", "/api/admin/users/{id}/reactivate", ADMIN),
    r("POST", "/api/admin/users/{id}/reset-password", ADMIN),
    r("POST", "/api/admin/users/{id}/unlock", ADMIN),
    // Audit (capabilities 38, 39).
    r("GET", "/api/audit", AUDIT_READERS),
    r("GET", "/api/audit/verify", AUDIT_READERS),
    r("GET", "/api/audit/{seq}", AUDIT_READERS),
    // Catalogue and parties.
    r("GET", "/api/catalogue/mp", MP_READERS),
    r("POST", "/api/catalogue/mp", MP_WRITERS),
    r("GET", "/api/catalogue/mp/{code}", MP_READERS),
    r("PUT", "/api/catalogue/mp/{code}", MP_WRITERS),
    r("POST", "/api/catalogue/mp/{code}/deactivate", MP_WRITERS),
    r("POST", "/api/catalogue/mp/{code}/reactivate", MP_WRITERS),
    r("GET", "/api/catalogue/pf", PF_READERS),
    r("POST", "/api/catalogue/pf", ADMIN),
    r("GET", "/api/catalogue/pf/{code}", PF_READERS),
    r("PUT", "/api/catalogue/pf/{code}", ADMIN),
    r("GET", "/api/suppliers", SUPPLIER_READERS),
    r("POST", "/api/suppliers", SUPPLIER_WRITERS),
    r("GET", "/api/suppliers/{code}", SUPPLIER_READERS),
    r("PUT", "/api/suppliers/{code}", SUPPLIER_WRITERS),
    r("POST", "/api/suppliers/{code}/block", ADMIN),
    r("POST", "/api/suppliers/{code}/unblock", ADMIN),
    r("GET", "/api/clients", CLIENT_READERS),
    r("POST", "/api/clients", CLIENT_WRITERS),
    r("GET", "/api/clients/{code}", CLIENT_READERS),
    r("PUT", "/api/clients/{code}", CLIENT_WRITERS),
    r("GET", "/api/catalogue/brands", EVERYONE),
    r("POST", "/api/catalogue/brands", ADMIN),
    r("PUT", "/api/catalogue/brands/{code}", ADMIN),
    r("GET", "/api/catalogue/families", EVERYONE),
    r("POST", "/api/catalogue/families", ADMIN),
    r("PUT", "/api/catalogue/families/{code}", ADMIN),
    r("GET", "/api/settings/company", EVERYONE),
    r("PUT", "/api/settings/company", ADMIN),
    r("GET", "/api/settings/chart-of-accounts", EVERYONE),
    r("PUT", "/api/settings/chart-of-accounts", ADMIN),
    // Stock.
    r("GET", "/api/purchase-orders", BC_READERS),
    r("POST", "/api/purchase-orders", MP_WRITERS),
    r("GET", "/api/purchase-orders/{reference}", BC_READERS),
    r("GET", "/api/purchase-orders/{reference}/pdf", BC_PRINTERS),
    r("PUT", "/api/purchase-orders/{reference}", MP_WRITERS),
    r("POST", "/api/purchase-orders/{reference}/send", MP_WRITERS),
    r("POST", "/api/purchase-orders/{reference}/confirm", MP_WRITERS),
    r("POST", "/api/purchase-orders/{reference}/close", MP_WRITERS),
    r("POST", "/api/purchase-orders/{reference}/cancel", ADMIN),
    r("GET", "/api/suppliers/{code}/performance", SUPPLIER_READERS),
    r("GET", "/api/recipes", PRODUCTION_READERS),
    r("GET", "/api/recipes/{code}", PRODUCTION_READERS),
    r("POST", "/api/recipes/{code}", PRODUCTION_WRITERS),
    r("GET", "/api/production-orders", PRODUCTION_READERS),
    r("POST", "/api/production-orders", PRODUCTION_WRITERS),
    r("GET", "/api/production-orders/{reference}", PRODUCTION_READERS),
    r("POST", "/api/production-orders/{reference}/reschedule", PRODUCTION_WRITERS),
    r("POST", "/api/production-orders/{reference}/start", PRODUCTION_WRITERS),
    r("POST", "/api/production-orders/{reference}/complete", PRODUCTION_WRITERS),
    r("POST", "/api/production-orders/{reference}/cancel", PRODUCTION_WRITERS),
    // Capability 14: the cockpit is read by ADMIN, APPRO, PRODUCTION, COMPTABLE; alerts by every role, each seeing
    // and handling the modules it reads (the handler filters and checks, DOMAIN.md §7.3).
    r("GET", "/api/appro/cockpit", PRODUCTION_READERS),
    r("POST", "/api/appro/suggestions/orders", MP_WRITERS),
    r("GET", "/api/alerts", EVERYONE),
    r("POST", "/api/alerts/{id}/acknowledge", EVERYONE),
    r("POST", "/api/alerts/{id}/postpone", EVERYONE),
    // Capability 34: every role traces (COMMERCIAL R−: the trace carries no value).
    r("GET", "/api/price-lists", PRICE_LIST_READERS),
    r("POST", "/api/price-lists", ADMIN),
    r("GET", "/api/price-lists/{id}", PRICE_LIST_READERS),
    r("PUT", "/api/price-lists/{id}", ADMIN),
    r("GET", "/api/invoices", SALES_READERS),
    r("POST", "/api/invoices", SALES_WRITERS),
    r("GET", "/api/invoices/{key}", SALES_READERS),
    r("GET", "/api/invoices/{key}/pdf", SALES_READERS),
    r("PUT", "/api/invoices/{key}", SALES_WRITERS),
    r("DELETE", "/api/invoices/{key}", SALES_WRITERS),
    r("POST", "/api/invoices/{key}/validate", SALES_WRITERS),
    r("POST", "/api/invoices/{key}/payments", SALES_WRITERS),
    r("POST", "/api/invoices/{key}/credit-notes", SALES_WRITERS),
    r("POST", "/api/payments/{reference}/cancel", ADMIN),
    r("POST", "/api/clients/{code}/refunds", ADMIN),
    r("GET", "/api/clients/{code}/statement", SALES_READERS),
    r("GET", "/api/credit-notes/{key}", SALES_READERS),
    r("GET", "/api/credit-notes/{key}/pdf", SALES_READERS),
    r("DELETE", "/api/credit-notes/{key}", SALES_WRITERS),
    r("POST", "/api/credit-notes/{key}/validate", ADMIN),
    r("GET", "/api/accounting/{export}", AUDIT_READERS),
    r("GET", "/api/deliveries", SALES_READERS),
    r("POST", "/api/deliveries", SALES_WRITERS),
    r("POST", "/api/deliveries/scan", SALES_WRITERS),
    r("GET", "/api/deliveries/{key}", SALES_READERS),
    r("GET", "/api/deliveries/{key}/pdf", SALES_READERS),
    r("POST", "/api/deliveries/{key}/validate", SALES_WRITERS),
    r("POST", "/api/deliveries/{key}/deliver", SALES_WRITERS),
    r("POST", "/api/deliveries/{key}/cancel", SALES_WRITERS),
    r("GET", "/api/deliveries/{key}/proof/{kind}", SALES_READERS),
    r("GET", "/api/trace", EVERYONE),
    r("GET", "/api/trace/recall", EVERYONE),
    r("POST", "/api/trace/recall/block", ADMIN),
    r("GET", "/api/receptions", RECEPTION_READERS),
    r("POST", "/api/receptions", MP_WRITERS),
    r("GET", "/api/receptions/{reference}", RECEPTION_READERS),
    r("GET", "/api/receptions/{reference}/labels", LABEL_PRINTERS),
    r("GET", "/api/stock/lots", LOT_READERS),
    r("GET", "/api/stock/lots/{number}", LOT_READERS),
    r("GET", "/api/stock/lots/{number}/label", LABEL_PRINTERS),
    r("POST", "/api/stock/lots/{number}/qc", QC),
    r("POST", "/api/stock/lots/{number}/block", ADMIN),
    r("POST", "/api/stock/lots/{number}/unblock", ADMIN),
    r("GET", "/api/stock/losses", LOSS_READERS),
    r("POST", "/api/stock/losses", LOSS_WRITERS),
    r("POST", "/api/stock/losses/write-off", LOSS_WRITERS),
    r("GET", "/api/stock/dashboard", LOT_READERS),
    r("GET", "/api/stock/echeances", LOT_READERS),
    r("GET", "/api/stock/fefo-plan", FEFO_READERS),
    r("GET", "/api/stock/products", LOT_READERS),
    r("GET", "/api/stock/movements", LOT_READERS),
    r("GET", "/api/stock/counts", COUNT_READERS),
    r("POST", "/api/stock/counts", COUNT_DECLARERS),
    r("GET", "/api/stock/counts/{reference}", COUNT_READERS),
    r("POST", "/api/stock/counts/{reference}/validate", COUNT_VALIDATORS),
    r("POST", "/api/stock/counts/{reference}/reject", COUNT_VALIDATORS),
    // Pages.
    r("GET", "/", AnySession),
    r("GET", "/connexion", Public),
    r("POST", "/connexion", Public),
    r("POST", "/deconnexion", AnySession),
    r("GET", "/installation", Public),
    r("POST", "/installation", Public),
    r("GET", "/mot-de-passe", AnySession),
    r("POST", "/mot-de-passe", AnySession),
    r("GET", "/mon-compte", AnySession),
    r("POST", "/mon-compte/sessions/{id}/fermer", AnySession),
    page("/tableau-de-bord", ADMIN, "Accueil", "Tableau de bord"),
    page("/alertes", EVERYONE, "Accueil", "Alertes"),
    page("/stock", LOT_READERS, "Stock", "Santé du stock"),
    page("/stock/produits", LOT_READERS, "Stock", "Stock par produit"),
    page("/stock/lots", LOT_READERS, "Stock", "Lots"),
    r("GET", "/stock/lots/{number}", LOT_READERS),
    r("POST", "/stock/lots/{number}/qc", QC),
    r("POST", "/stock/lots/{number}/bloquer", ADMIN),
    r("POST", "/stock/lots/{number}/debloquer", ADMIN),
    r("POST", "/stock/lots/{number}/perte", LOSS_WRITERS),
    page("/stock/echeances", LOT_READERS, "Stock", "Échéances DLC"),
    r("POST", "/stock/echeances/perte", LOSS_WRITERS),
    page("/stock/mouvements", LOT_READERS, "Stock", "Mouvements"),
    page("/stock/comptages", COUNT_READERS, "Stock", "Comptages"),
    r("GET", "/stock/comptages/nouveau", COUNT_DECLARERS),
    page("/stock/pertes", LOSS_READERS, "Stock", "Pertes"),
    r("POST", "/stock/comptages/nouveau", COUNT_DECLARERS),
    r("GET", "/stock/comptages/{reference}", COUNT_READERS),
    r("POST", "/stock/comptages/{reference}/valider", COUNT_VALIDATORS),
    r("POST", "/stock/comptages/{reference}/rejeter", COUNT_VALIDATORS),
    page("/appro", PRODUCTION_READERS, "Approvisionnement", "Cockpit"),
    page("/appro/suggestions", MP_WRITERS, "Approvisionnement", "Suggestions"),
    r("POST", "/appro/suggestions", MP_WRITERS),
    page("/appro/bons-de-commande", BC_READERS, "Approvisionnement", "Bons de commande"),
    r("GET", "/appro/bons-de-commande/nouveau", MP_WRITERS),
    r("POST", "/appro/bons-de-commande/nouveau", MP_WRITERS),
    r("GET", "/appro/bons-de-commande/{reference}", BC_READERS),
    r("POST", "/appro/bons-de-commande/{reference}/envoyer", MP_WRITERS),
    r("POST", "/appro/bons-de-commande/{reference}/confirmer", MP_WRITERS),
    r("POST", "/appro/bons-de-commande/{reference}/solder", MP_WRITERS),
    r("POST", "/appro/bons-de-commande/{reference}/annuler", ADMIN),
    page("/production", PRODUCTION_READERS, "Production", "Tableau de bord"),
    page("/production/ordres", PRODUCTION_READERS, "Production", "Ordres"),
    r("GET", "/production/ordres/nouveau", PRODUCTION_WRITERS),
    r("POST", "/production/ordres/nouveau", PRODUCTION_WRITERS),
    r("GET", "/production/ordres/{reference}", PRODUCTION_READERS),
    r("POST", "/production/ordres/{reference}/demarrer", PRODUCTION_WRITERS),
    r("POST", "/production/ordres/{reference}/terminer", PRODUCTION_WRITERS),
    r("POST", "/production/ordres/{reference}/replanifier", PRODUCTION_WRITERS),
    r("POST", "/production/ordres/{reference}/annuler", PRODUCTION_WRITERS),
    page("/production/planning", PRODUCTION_READERS, "Production", "Planning"),
    page("/production/recettes", PRODUCTION_READERS, "Production", "Recettes"),
    // UI.md row 56: the QC queue is for those who decide (capability 17).
    page("/production/qualite", QC, "Production", "Contrôle qualité"),
    r("GET", "/production/recettes/{code}", PRODUCTION_READERS),
    r("GET", "/production/recettes/{code}/nouvelle-version", PRODUCTION_WRITERS),
    r("GET", "/production/recettes/{code}/{version}", PRODUCTION_READERS),
    r("POST", "/production/recettes/{code}/nouvelle-version", PRODUCTION_WRITERS),
    page("/tracabilite", EVERYONE, "Traçabilité", "Traçabilité"),
    r("GET", "/tracabilite/rappel", EVERYONE),
    r("POST", "/tracabilite/rappel/bloquer", ADMIN),
    page("/appro/receptions", RECEPTION_READERS, "Approvisionnement", "Réceptions"),
    r("GET", "/appro/receptions/nouvelle", MP_WRITERS),
    r("POST", "/appro/receptions/nouvelle", MP_WRITERS),
    r("GET", "/appro/receptions/{reference}", RECEPTION_READERS),
    page("/fournisseurs", SUPPLIER_READERS, "Approvisionnement", "Fournisseurs"),
    r("GET", "/fournisseurs/nouveau", SUPPLIER_WRITERS),
    r("POST", "/fournisseurs/nouveau", SUPPLIER_WRITERS),
    r("GET", "/fournisseurs/{code}", SUPPLIER_READERS),
    r("POST", "/fournisseurs/{code}/bloquer", ADMIN),
    r("POST", "/fournisseurs/{code}/debloquer", ADMIN),
    page("/ventes", SALES_READERS, "Ventes", "Tableau de bord ventes"),
    page("/ventes/factures", SALES_READERS, "Ventes", "Factures"),
    r("GET", "/ventes/factures/nouvelle", SALES_WRITERS),
    r("POST", "/ventes/factures/nouvelle", SALES_WRITERS),
    r("GET", "/ventes/factures/{key}", SALES_READERS),
    r("POST", "/ventes/factures/{key}/valider", SALES_WRITERS),
    r("POST", "/ventes/factures/{key}/supprimer", SALES_WRITERS),
    r("POST", "/ventes/factures/{key}/reglement", SALES_WRITERS),
    r("POST", "/ventes/factures/{key}/avoir-total", SALES_WRITERS),
    r("POST", "/ventes/factures/{key}/livrer", SALES_WRITERS),
    r("GET", "/ventes/avoirs/nouveau", SALES_WRITERS),
    r("POST", "/ventes/avoirs/nouveau", SALES_WRITERS),
    r("GET", "/ventes/avoirs/{key}", SALES_READERS),
    r("POST", "/ventes/avoirs/{key}/valider", ADMIN),
    page("/ventes/reglements", SALES_READERS, "Ventes", "Règlements"),
    r("POST", "/ventes/reglements/{reference}/annuler", ADMIN),
    page("/ventes/balance-agee", SALES_READERS, "Ventes", "Balance âgée"),
    r("GET", "/clients/{code}/releve", SALES_READERS),
    r("GET", "/ventes/remboursements/nouveau", ADMIN),
    r("POST", "/ventes/remboursements/nouveau", ADMIN),
    page("/clients", CLIENT_READERS, "Ventes", "Clients"),
    page("/ventes/tarifs", PRICE_LIST_READERS, "Ventes", "Tarifs"),
    r("GET", "/ventes/tarifs/nouveau", ADMIN),
    r("POST", "/ventes/tarifs/nouveau", ADMIN),
    r("GET", "/ventes/tarifs/{id}", PRICE_LIST_READERS),
    r("GET", "/ventes/tarifs/{id}/modifier", ADMIN),
    r("POST", "/ventes/tarifs/{id}/modifier", ADMIN),
    page("/livraisons", SALES_READERS, "Livraisons", "Livraisons"),
    // UI.md row 77: the scan log is read by ADMIN and COMPTABLE.
    page("/livraisons/scans", AUDIT_READERS, "Livraisons", "Journal des scans"),
    r("GET", "/livraisons/nouvelle", SALES_WRITERS),
    r("POST", "/livraisons/nouvelle", SALES_WRITERS),
    r("GET", "/livraisons/{key}", SALES_READERS),
    r("GET", "/livraisons/{key}/signature", SALES_READERS),
    r("POST", "/livraisons/{key}/scanner", SALES_WRITERS),
    r("POST", "/livraisons/{key}/confirmer", SALES_WRITERS),
    r("POST", "/livraisons/{key}/livrer", SALES_WRITERS),
    r("POST", "/livraisons/{key}/annuler", SALES_WRITERS),
    r("GET", "/clients/nouveau", CLIENT_WRITERS),
    r("POST", "/clients/nouveau", CLIENT_WRITERS),
    page("/catalogue/matieres", MP_READERS, "Catalogue", "Matières premières"),
    r("GET", "/catalogue/matieres/nouvelle", MP_WRITERS),
    r("POST", "/catalogue/matieres/nouvelle", MP_WRITERS),
    page("/catalogue/produits", PF_READERS, "Catalogue", "Produits finis"),
    r("GET", "/catalogue/produits/nouveau", ADMIN),
    r("POST", "/catalogue/produits/nouveau", ADMIN),
    page("/catalogue/referentiels", EVERYONE, "Catalogue", "Référentiels"),
    r("POST", "/catalogue/referentiels", ADMIN),
    page("/comptabilite", AUDIT_READERS, "Comptabilité", "Tableau de bord finances"),
    page("/comptabilite/exports", AUDIT_READERS, "Comptabilité", "Exports"),
    page("/parametres/societe", EVERYONE, "Paramètres", "Société"),
    r("POST", "/parametres/societe", ADMIN),
    page("/parametres/plan-comptable", EVERYONE, "Paramètres", "Plan comptable"),
    r("POST", "/parametres/plan-comptable", ADMIN),
    page("/parametres/logo", ADMIN, "Paramètres", "Logo"),
    r("POST", "/parametres/logo", ADMIN),
    r("GET", "/parametres/logo/image", EVERYONE),
    // UI.md row 6: every role has its alerts (the handler shows the modules it reads).
    r("POST", "/alertes/{id}/prendre-en-compte", EVERYONE),
    r("POST", "/alertes/{id}/reporter", EVERYONE),
    page("/systeme/utilisateurs", ADMIN, "Système", "Utilisateurs"),
    r("GET", "/systeme/utilisateurs/nouveau", ADMIN),
    r("POST", "/systeme/utilisateurs/nouveau", ADMIN),
    r("GET", "/systeme/utilisateurs/{id}", ADMIN),
    r("POST", "/systeme/utilisateurs/{id}", ADMIN),
    r("GET", "/systeme/utilisateurs/{id}/{action}", ADMIN),
    r("POST", "/systeme/utilisateurs/{id}/{action}", ADMIN),
    page("/systeme/appareils", ADMIN, "Système", "Appareils"),
    page("/systeme/synchronisation", ADMIN, "Système", "Synchronisation"),
    // UI.md §6: the drivers' app shell, manifest, service worker and scripts hold no data (IndexedDB and the sync
    // API with the device's token do); they load offline too.
    r("GET", "/app", Public),
    r("GET", "/app/", Public),
    r("GET", "/app/{*rest}", Public),
    r("POST", "/systeme/synchronisation/relancer", ADMIN),
    r("POST", "/systeme/synchronisation/{id}/relancer", ADMIN),
    r("GET", "/systeme/appareils/{id}/{action}", ADMIN),
    r("POST", "/systeme/appareils/{id}/{action}", ADMIN),
    page("/systeme/sante", ADMIN, "Système", "Santé"),
    page("/systeme/audit", AUDIT_READERS, "Contrôle", "Journal d'audit"),
    r("GET", "/systeme/audit/{seq}", AUDIT_READERS),
];

/// The declared access of a route, `None` when it was never declared (refused to everyone). Swagger UI, mounted
/// only when `DOCS_ENABLED`, is public documentation.
pub fn lookup(method: &str, template: &str) -> Option<Access> {
    if template == "/docs" || template.starts_with("/docs/") {
        return Some(Public);
    }
    let method = if method == "HEAD" { "GET" } else { method };
    ROUTES.iter().find(|r| r.method == method && r.path == template).map(|r| r.access)
}

/// The pages of `role`'s navigation, grouped by section in table order.
pub fn menu(role: Role) -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    let mut sections: Vec<(&'static str, Vec<(&'static str, &'static str)>)> = Vec::new();
    for route in ROUTES {
        let Some((section, label)) = route.nav else { continue };
        if route.access.check(Some(role)).is_err() {
            continue;
        }
        match sections.iter_mut().find(|(s, _)| *s == section) {
            Some((_, items)) => items.push((label, route.path)),
            None => sections.push((section, vec![(label, route.path)])),
        }
    }
    sections
}

/// Whether `role` may open the page at `path` (a concrete path; only parameterless pages are matched).
pub fn may_open(role: Role, path: &str) -> bool {
    lookup("GET", path).is_some_and(|a| a.check(Some(role)).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_is_declared_once() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(!(a.method == b.method && a.path == b.path), "{} {} declared twice", a.method, a.path);
            }
        }
    }

    #[test]
    fn menus_follow_the_roles() {
        let admin: Vec<_> = menu(Admin).into_iter().flat_map(|(_, i)| i).map(|(l, _)| l).collect();
        assert_eq!(
            admin,
            vec![
                "Tableau de bord",
                "Alertes",
                "Santé du stock",
                "Stock par produit",
                "Lots",
                "Échéances DLC",
                "Mouvements",
                "Comptages",
                "Pertes",
                "Cockpit",
                "Suggestions",
                "Bons de commande",
                "Réceptions",
                "Fournisseurs",
                "Tableau de bord",
                "Ordres",
                "Planning",
                "Recettes",
                "Contrôle qualité",
                "Traçabilité",
                "Tableau de bord ventes",
                "Factures",
                "Règlements",
                "Balance âgée",
                "Clients",
                "Tarifs",
                "Livraisons",
                "Journal des scans",
                "Matières premières",
                "Produits finis",
                "Référentiels",
                "Tableau de bord finances",
                "Exports",
                "Société",
                "Plan comptable",
                "Logo",
                "Utilisateurs",
                "Appareils",
                "Synchronisation",
                "Santé",
                "Journal d'audit"
            ]
        );
        let comptable: Vec<_> = menu(Comptable).into_iter().map(|(s, _)| s).collect();
        assert_eq!(
            comptable,
            vec![
                "Accueil",
                "Stock",
                "Approvisionnement",
                "Production",
                "Traçabilité",
                "Ventes",
                "Livraisons",
                "Catalogue",
                "Comptabilité",
                "Paramètres",
                "Contrôle"
            ]
        );
        let commercial: Vec<_> = menu(Role::Commercial).into_iter().flat_map(|(_, i)| i).map(|(l, _)| l).collect();
        assert_eq!(
            commercial,
            vec![
                "Alertes",
                "Santé du stock",
                "Stock par produit",
                "Lots",
                "Échéances DLC",
                "Mouvements",
                "Traçabilité",
                "Tableau de bord ventes",
                "Factures",
                "Règlements",
                "Balance âgée",
                "Clients",
                "Tarifs",
                "Livraisons",
                "Produits finis",
                "Référentiels",
                "Société",
                "Plan comptable"
            ]
        );
        assert!(may_open(Comptable, "/systeme/audit"));
        assert!(!may_open(Comptable, "/systeme/utilisateurs"));
        assert_eq!(lookup("DELETE", "/api/admin/users/{id}"), None);
    }
}
