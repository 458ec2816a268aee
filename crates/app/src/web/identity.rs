//! Identity pages (UI.md §3 rows 1–4, 84–87, 91–92): login, first run, password change, my account, users,
//! devices, the audit log. They call the same functions as the JSON API.

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use domain::format::datetime_algiers;
use domain::identity::{PASSWORD_RULES, Role, normalize_email, password_failures, password_rule_fr};
use serde::Deserialize;
use uuid::Uuid;

use super::{Layout, PageCtx, page, redirect_with_flash};
use crate::api::admin::{self, NewUserBody};
use crate::auth::session::{self, LoginInput};
use crate::auth::{Identity, tokens};
use crate::platform::errors::ApiError;
use crate::state::AppState;

fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| datetime_algiers(t.timestamp())).unwrap_or_else(|| "—".into())
}

/// Where a role lands: its dashboard once that page exists, the home page until then.
pub fn landing(role: Role) -> &'static str {
    if crate::access::may_open(role, role.landing()) { role.landing() } else { "/" }
}

fn with_cookies(mut res: Response, cookies: Vec<axum::http::HeaderValue>) -> Response {
    for c in cookies {
        res.headers_mut().append(axum::http::header::SET_COOKIE, c);
    }
    res
}

fn error_status(e: &ApiError) -> StatusCode {
    e.status
}

// ---- home ------------------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
    first_name: String,
    role_label: &'static str,
}

async fn home(pc: PageCtx, id: Identity) -> Response {
    let target = landing(id.role);
    if target != "/" {
        return Redirect::to(target).into_response();
    }
    let p = HomePage {
        layout: Layout::for_page("Accueil", "/", &pc),
        first_name: id.user.first_name.clone(),
        role_label: id.role.label_fr(),
    };
    page(StatusCode::OK, p, &pc)
}

// ---- login / logout --------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    email: String,
    suite: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SuiteQuery {
    suite: String,
}

/// Only local paths are followed after login (no open redirect).
fn safe_suite(s: &str) -> &str {
    if s.starts_with('/') && !s.starts_with("//") && !s.contains('\\') { s } else { "" }
}

async fn login_page(State(st): State<AppState>, pc: PageCtx, Query(q): Query<SuiteQuery>) -> Response {
    if let Some(id) = &pc.identity {
        return Redirect::to(landing(id.role)).into_response();
    }
    if store::identity::count_users(st.dbmon.db()).await.unwrap_or(1) == 0 {
        return Redirect::to("/installation").into_response();
    }
    let mut layout = Layout::new("Connexion");
    layout.flash.extend(pc.flash.iter().map(|f| super::Flash { tone: f.tone, text: f.text.clone() }));
    page(StatusCode::OK, LoginPage { layout, email: String::new(), suite: safe_suite(&q.suite).into() }, &pc)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginForm {
    email: String,
    password: String,
    suite: String,
}

async fn login_submit(State(st): State<AppState>, pc: PageCtx, Form(f): Form<LoginForm>) -> Response {
    let input = LoginInput { email: f.email.clone(), password: f.password, device_client: false, device_id: None };
    match session::login(&st, input, &pc.ctx).await {
        Ok(done) => {
            let role = store::identity::role_of(&done.user);
            let suite = safe_suite(&f.suite);
            let to = if done.user.must_change_password {
                "/mot-de-passe".to_string()
            } else if !suite.is_empty() && crate::access::may_open(role, suite.split('?').next().unwrap_or("")) {
                suite.to_string()
            } else {
                landing(role).to_string()
            };
            with_cookies(Redirect::to(&to).into_response(), session::web_cookies(&st, &done.issued))
        }
        Err(e) => {
            let mut layout = Layout::new("Connexion");
            layout.flash.push(super::Flash { tone: "erreur", text: e.message.clone() });
            let mut res =
                page(error_status(&e), LoginPage { layout, email: f.email, suite: safe_suite(&f.suite).into() }, &pc);
            if let Some(s) = e.retry_after {
                res.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(s));
            }
            res
        }
    }
}

async fn logout(State(st): State<AppState>, pc: PageCtx, id: Identity) -> Response {
    if let Err(e) = session::logout(&st, &id, &pc.ctx).await {
        return super::unavailable_page(&e.message);
    }
    with_cookies(redirect_with_flash("/connexion", "succes", "Vous êtes déconnecté."), session::clear_cookies(&st))
}

// ---- password rules, shared by the first-run and change-password forms ----------------------------------------

struct RuleLine {
    code: &'static str,
    text: &'static str,
    failed: bool,
}

fn rule_lines(failed: &[&str]) -> Vec<RuleLine> {
    PASSWORD_RULES.iter().map(|c| RuleLine { code: c, text: password_rule_fr(c), failed: failed.contains(c) }).collect()
}

// ---- first run -------------------------------------------------------------------------------------------------

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct InstallForm {
    token: String,
    first_name: String,
    last_name: String,
    email: String,
    new_password: String,
    confirm_password: String,
}

#[derive(Template)]
#[template(path = "installation.html")]
struct InstallPage {
    layout: Layout,
    form: InstallForm,
    rules: Vec<RuleLine>,
    any_failed: bool,
}

async fn install_page(State(st): State<AppState>, pc: PageCtx) -> Response {
    match store::identity::count_users(st.dbmon.db()).await {
        Ok(0) => {}
        Ok(_) => return super::not_found().await,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    }
    let p = InstallPage {
        layout: Layout::new("Première installation"),
        form: InstallForm::default(),
        rules: rule_lines(&[]),
        any_failed: false,
    };
    page(StatusCode::OK, p, &pc)
}

async fn install_submit(State(st): State<AppState>, pc: PageCtx, Form(f): Form<InstallForm>) -> Response {
    let db = st.dbmon.db();
    match store::identity::count_users(db).await {
        Ok(0) => {}
        Ok(_) => return super::not_found().await,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    }
    let stored = store::secrets::get(db, store::secrets::SETUP_TOKEN).await.ok().flatten();
    let refuse = |f: InstallForm, status: StatusCode, msg: String, failed: &[&str]| {
        let mut layout = Layout::new("Première installation");
        layout.flash.push(super::Flash { tone: "erreur", text: msg });
        let form = InstallForm { new_password: String::new(), confirm_password: String::new(), ..f };
        page(status, InstallPage { layout, form, rules: rule_lines(failed), any_failed: !failed.is_empty() }, &pc)
    };
    if !stored.as_deref().is_some_and(|s| tokens::same(s, f.token.trim())) {
        let ctx = pc.ctx.clone();
        crate::auth::audit_refusal(&st, ctx.anonymous(), store::audit::Change::new("SETUP_TOKEN_INVALID").security())
            .await;
        return refuse(
            f,
            StatusCode::FORBIDDEN,
            "Jeton d'installation invalide : recopiez celui affiché par le serveur.".into(),
            &[],
        );
    }
    let Some(email) = normalize_email(&f.email) else {
        return refuse(f, StatusCode::UNPROCESSABLE_ENTITY, "Adresse e-mail invalide.".into(), &[]);
    };
    if f.first_name.trim().is_empty() || f.last_name.trim().is_empty() {
        return refuse(f, StatusCode::UNPROCESSABLE_ENTITY, "Le nom et le prénom sont obligatoires.".into(), &[]);
    }
    let failed = password_failures(&f.new_password, None, &email);
    if !failed.is_empty() {
        let msg = domain::rejection::Rejection::mot_de_passe_faible(&failed).message;
        return refuse(f, StatusCode::UNPROCESSABLE_ENTITY, msg, &failed);
    }
    if f.new_password != f.confirm_password {
        return refuse(
            f,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Les deux mots de passe ne sont pas identiques.".into(),
            &[],
        );
    }
    let hash = match crate::auth::password::hash(f.new_password.clone()).await {
        Ok(h) => h,
        Err(e) => return refuse(f, e.status, e.message, &[]),
    };
    let new = store::identity::NewUser {
        email,
        first_name: f.first_name.trim().into(),
        last_name: f.last_name.trim().into(),
        role: Role::Admin,
        password_hash: hash,
        must_change_password: false,
    };
    let actor = store::audit::Actor { label: Some("installation".into()), ..pc.ctx.anonymous() };
    let now = st.clock.now();
    let res = db
        .write(|tx| {
            let (new, actor) = (new.clone(), actor.clone());
            Box::pin(async move {
                let u = store::identity::create_user(&**tx, new, &actor, now, true).await?;
                store::secrets::delete(&**tx, store::secrets::SETUP_TOKEN).await?;
                Ok::<_, store::OpError>(u)
            })
        })
        .await;
    match res {
        Ok(_) => redirect_with_flash(
            "/connexion",
            "succes",
            "Administrateur créé. Connectez-vous avec votre adresse e-mail et votre mot de passe.",
        ),
        Err(store::OpError::Rejected(_)) => super::not_found().await,
        Err(store::OpError::Store(e)) => super::unavailable_page(&ApiError::from(e).message),
    }
}

// ---- change password -------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    layout: Layout,
    forced: bool,
    rules: Vec<RuleLine>,
    any_failed: bool,
}

async fn password_page(pc: PageCtx, id: Identity) -> Response {
    let p = PasswordPage {
        layout: Layout::for_page("Changer le mot de passe", "/mot-de-passe", &pc),
        forced: id.user.must_change_password,
        rules: rule_lines(&[]),
        any_failed: false,
    };
    page(StatusCode::OK, p, &pc)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PasswordForm {
    current_password: String,
    new_password: String,
    confirm_password: String,
}

async fn password_submit(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Form(f): Form<PasswordForm>,
) -> Response {
    let refuse = |status: StatusCode, msg: String, failed: Vec<&'static str>| {
        let mut layout = Layout::for_page("Changer le mot de passe", "/mot-de-passe", &pc);
        layout.flash.push(super::Flash { tone: "erreur", text: msg });
        let any_failed = !failed.is_empty();
        page(
            status,
            PasswordPage { layout, forced: id.user.must_change_password, rules: rule_lines(&failed), any_failed },
            &pc,
        )
    };
    if f.new_password != f.confirm_password {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Les deux nouveaux mots de passe ne sont pas identiques.".into(),
            vec![],
        );
    }
    match session::change_password(&st, &id, f.current_password, f.new_password, &pc.ctx).await {
        Ok(issued) => with_cookies(
            redirect_with_flash(
                landing(id.role),
                "succes",
                "Mot de passe changé. Vos autres sessions ont été fermées.",
            ),
            session::web_cookies(&st, &issued),
        ),
        Err(e) => {
            let failed: Vec<&'static str> = e.details["failed"]
                .as_array()
                .map(|a| PASSWORD_RULES.iter().copied().filter(|r| a.iter().any(|v| v == r)).collect())
                .unwrap_or_default();
            refuse(e.status, e.message, failed)
        }
    }
}

// ---- my account ------------------------------------------------------------------------------------------------

struct SessionLine {
    id: Uuid,
    kind: String,
    created: String,
    last_used: String,
    ip: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    user: store::identity::User,
    role_label: &'static str,
    last_login: String,
    sessions: Vec<SessionLine>,
    logins: Vec<(String, &'static str, String)>,
}

async fn account_page(State(st): State<AppState>, pc: PageCtx, id: Identity) -> Response {
    let db = st.dbmon.db();
    let sessions = store::identity::open_sessions(db, id.user.id).await.unwrap_or_default();
    let sessions = sessions
        .into_iter()
        .map(|s| SessionLine {
            id: s.id,
            kind: if s.client == "device" { "Appareil".into() } else { "Navigateur".into() },
            created: when(Some(s.created_at)),
            last_used: when(Some(s.last_used_at)),
            ip: s.ip.unwrap_or_else(|| "—".into()),
            current: s.id == id.session_id,
        })
        .collect();
    let f = store::audit::Filter { actor_id: Some(id.user.id), ..Default::default() };
    let logins = store::audit::list(db, &f, 200)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.action == "LOGIN_SUCCESS" || r.action == "LOGIN_FAILURE")
        .take(10)
        .map(|r| {
            let ok = if r.action == "LOGIN_SUCCESS" { "Réussie" } else { "Échouée" };
            (when(Some(r.at)), ok, r.ip.unwrap_or_else(|| "—".into()))
        })
        .collect();
    let p = AccountPage {
        layout: Layout::for_page("Mon compte", "/mon-compte", &pc),
        last_login: when(id.user.last_login_at),
        role_label: id.role.label_fr(),
        user: id.user.clone(),
        sessions,
        logins,
    };
    page(StatusCode::OK, p, &pc)
}

async fn close_session(State(st): State<AppState>, pc: PageCtx, id: Identity, Path(sid): Path<Uuid>) -> Response {
    let db = st.dbmon.db();
    let mine = store::identity::open_sessions(db, id.user.id).await.unwrap_or_default().iter().any(|s| s.id == sid);
    if !mine || sid == id.session_id {
        return redirect_with_flash("/mon-compte", "erreur", "Cette session ne peut pas être fermée ici.");
    }
    let actor = id.actor(&pc.ctx);
    let now = st.clock.now();
    let res = db
        .write(|tx| {
            let actor = actor.clone();
            Box::pin(async move {
                store::identity::revoke_session(&**tx, sid, "CLOSED_BY_USER", now).await?;
                store::audit::append(
                    &**tx,
                    &actor,
                    store::audit::Change::new("SESSION_REVOKED").entity("session", sid),
                    now,
                )
                .await?;
                Ok::<_, store::StoreError>(())
            })
        })
        .await;
    match res {
        Ok(()) => redirect_with_flash("/mon-compte", "succes", "Session fermée."),
        Err(e) => super::unavailable_page(&ApiError::from(e).message),
    }
}

// ---- users (ADMIN) ---------------------------------------------------------------------------------------------

struct UserLine {
    id: Uuid,
    code: String,
    name: String,
    email: String,
    role: &'static str,
    badges: Vec<(&'static str, &'static str)>,
    last_login: String,
}

fn user_badges(u: &store::identity::User, locked: bool) -> Vec<(&'static str, &'static str)> {
    let mut b = vec![if u.is_active { ("vert", "Actif") } else { ("gris", "Inactif") }];
    if u.must_change_password {
        b.push(("ambre", "Doit changer son mot de passe"));
    }
    if locked {
        b.push(("rouge", "Verrouillé (15 min)"));
    }
    b
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    layout: Layout,
    users: Vec<UserLine>,
}

async fn users_page(State(st): State<AppState>, pc: PageCtx) -> Response {
    let db = st.dbmon.db();
    let (users, locked) =
        match (store::identity::list_users(db).await, store::identity::locked_keys(db, st.clock.now()).await) {
            (Ok(u), Ok(l)) => (u, l),
            (Err(e), _) | (_, Err(e)) => return super::unavailable_page(&ApiError::from(e).message),
        };
    let users = users
        .iter()
        .map(|u| UserLine {
            id: u.id,
            code: u.code.clone(),
            name: format!("{} {}", u.first_name, u.last_name),
            email: u.email.clone(),
            role: store::identity::role_of(u).label_fr(),
            badges: user_badges(u, locked.contains(&session::email_key(&u.email))),
            last_login: when(u.last_login_at),
        })
        .collect();
    page(
        StatusCode::OK,
        UsersPage { layout: Layout::for_page("Utilisateurs", "/systeme/utilisateurs", &pc), users },
        &pc,
    )
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct NewUserForm {
    first_name: String,
    last_name: String,
    email: String,
    role: String,
}

#[derive(Template)]
#[template(path = "user_new.html")]
struct NewUserPage {
    layout: Layout,
    form: NewUserForm,
    roles: Vec<(&'static str, &'static str)>,
    created: Option<(String, String)>,
}

fn role_options() -> Vec<(&'static str, &'static str)> {
    Role::ALL.iter().map(|r| (r.code(), r.label_fr())).collect()
}

async fn new_user_page(pc: PageCtx) -> Response {
    let form = NewUserForm { role: "COMMERCIAL".into(), ..Default::default() };
    let p = NewUserPage {
        layout: Layout::for_page("Nouvel utilisateur", "/systeme/utilisateurs", &pc),
        form,
        roles: role_options(),
        created: None,
    };
    page(StatusCode::OK, p, &pc)
}

async fn new_user_submit(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Form(f): Form<NewUserForm>,
) -> Response {
    let body = NewUserBody {
        email: f.email.clone(),
        first_name: f.first_name.clone(),
        last_name: f.last_name.clone(),
        role: f.role.clone(),
    };
    let mut layout = Layout::for_page("Nouvel utilisateur", "/systeme/utilisateurs", &pc);
    match admin::create_user_with_otp(&st, body, &id, &pc.ctx).await {
        Ok((u, otp)) => {
            layout.flash.push(super::Flash { tone: "succes", text: format!("Utilisateur {} créé.", u.code) });
            let p = NewUserPage {
                layout,
                form: NewUserForm::default(),
                roles: role_options(),
                created: Some((u.email, otp)),
            };
            page(StatusCode::CREATED, p, &pc)
        }
        Err(e) => {
            layout.flash.push(super::Flash { tone: "erreur", text: e.message.clone() });
            page(e.status, NewUserPage { layout, form: f, roles: role_options(), created: None }, &pc)
        }
    }
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    layout: Layout,
    user: store::identity::User,
    badges: Vec<(&'static str, &'static str)>,
    role_label: &'static str,
    roles: Vec<(&'static str, &'static str)>,
    is_self: bool,
    locked: bool,
    sessions: Vec<(&'static str, String, String, String)>,
}

async fn user_view(
    st: &AppState,
    pc: &PageCtx,
    id: &Identity,
    uid: Uuid,
    status: StatusCode,
    flash: Option<super::Flash>,
) -> Response {
    let db = st.dbmon.db();
    let user = match store::identity::user_by_id(db.conn(), uid).await {
        Ok(Some(u)) => u,
        Ok(None) => return super::not_found().await,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let locked = store::identity::locked_keys(db, st.clock.now())
        .await
        .unwrap_or_default()
        .contains(&session::email_key(&user.email));
    let sessions = store::identity::open_sessions(db, uid)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            let kind = if s.client == "device" { "Appareil" } else { "Navigateur" };
            (
                kind,
                s.device_id.map(|d| d.to_string()).unwrap_or_else(|| "—".into()),
                when(Some(s.last_used_at)),
                s.ip.unwrap_or_default(),
            )
        })
        .collect();
    let mut layout = Layout::for_page(&format!("{} {}", user.first_name, user.last_name), "/systeme/utilisateurs", pc);
    layout.flash.extend(flash);
    let p = UserPage {
        layout,
        badges: user_badges(&user, locked),
        role_label: store::identity::role_of(&user).label_fr(),
        roles: role_options(),
        is_self: id.user.id == uid,
        locked,
        sessions,
        user,
    };
    page(status, p, pc)
}

async fn user_page(State(st): State<AppState>, pc: PageCtx, id: Identity, Path(uid): Path<Uuid>) -> Response {
    user_view(&st, &pc, &id, uid, StatusCode::OK, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EditForm {
    first_name: String,
    last_name: String,
    role: String,
}

async fn user_submit(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(uid): Path<Uuid>,
    Form(f): Form<EditForm>,
) -> Response {
    let edit = store::identity::UserEdit {
        first_name: Some(f.first_name.trim().to_string()).filter(|s| !s.is_empty()),
        last_name: Some(f.last_name.trim().to_string()).filter(|s| !s.is_empty()),
        role: Role::parse(&f.role),
        is_active: None,
    };
    match admin::apply_edit(&st, uid, edit, &id, &pc.ctx).await {
        Ok(_) => redirect_with_flash(&format!("/systeme/utilisateurs/{uid}"), "succes", "Modifications enregistrées."),
        Err(e) => user_view(&st, &pc, &id, uid, e.status, Some(super::Flash { tone: "erreur", text: e.message })).await,
    }
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    layout: Layout,
    text: String,
    action: String,
    back: String,
    button: &'static str,
    danger: bool,
    reason_min: usize,
    reason: String,
}

async fn user_action_page(
    State(st): State<AppState>,
    pc: PageCtx,
    Path((uid, action)): Path<(Uuid, String)>,
) -> Response {
    let user = match store::identity::user_by_id(st.dbmon.db().conn(), uid).await {
        Ok(Some(u)) => u,
        Ok(None) => return super::not_found().await,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let who = format!("{} {} ({})", user.first_name, user.last_name, user.email);
    let (title, text, button, danger) = match action.as_str() {
        "desactiver" => (
            "Désactiver l'utilisateur",
            format!(
                "Désactiver {who} ? Toutes ses sessions (navigateurs et appareils) seront fermées immédiatement et il ne pourra plus se connecter."
            ),
            "Désactiver",
            true,
        ),
        "reactiver" => (
            "Réactiver l'utilisateur",
            format!("Réactiver {who} ? Il pourra de nouveau se connecter avec son mot de passe."),
            "Réactiver",
            false,
        ),
        "reinitialiser" => (
            "Réinitialiser le mot de passe",
            format!(
                "Réinitialiser le mot de passe de {who} ? Un mot de passe à usage unique sera affiché une seule fois ; toutes ses sessions seront fermées et il devra le changer à la connexion."
            ),
            "Réinitialiser",
            true,
        ),
        "deverrouiller" => (
            "Déverrouiller le compte",
            format!("Lever le verrouillage de connexion de {who} ?"),
            "Déverrouiller",
            false,
        ),
        _ => return super::not_found().await,
    };
    let back = format!("/systeme/utilisateurs/{uid}");
    let p = ConfirmPage {
        layout: Layout::for_page(title, "/systeme/utilisateurs", &pc),
        text,
        action: format!("{back}/{action}"),
        back,
        button,
        danger,
        reason_min: 0,
        reason: String::new(),
    };
    page(StatusCode::OK, p, &pc)
}

async fn user_action(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path((uid, action)): Path<(Uuid, String)>,
) -> Response {
    let back = format!("/systeme/utilisateurs/{uid}");
    let flash_err = |e: ApiError| Some(super::Flash { tone: "erreur", text: e.message });
    match action.as_str() {
        "desactiver" | "reactiver" => {
            let edit = store::identity::UserEdit { is_active: Some(action == "reactiver"), ..Default::default() };
            match admin::apply_edit(&st, uid, edit, &id, &pc.ctx).await {
                Ok(u) => redirect_with_flash(
                    &back,
                    "succes",
                    if u.is_active {
                        "Utilisateur réactivé."
                    } else {
                        "Utilisateur désactivé : ses sessions sont fermées."
                    },
                ),
                Err(e) => user_view(&st, &pc, &id, uid, e.status, flash_err(e)).await,
            }
        }
        "reinitialiser" => match admin::reset_password(&st, uid, &id, &pc.ctx).await {
            Ok((u, otp)) => {
                let mut layout = Layout::for_page("Mot de passe réinitialisé", "/systeme/utilisateurs", &pc);
                layout.flash.push(super::Flash { tone: "succes", text: "Mot de passe réinitialisé.".into() });
                let p =
                    NewUserPage { layout, form: NewUserForm::default(), roles: vec![], created: Some((u.email, otp)) };
                page(StatusCode::OK, p, &pc)
            }
            Err(e) => user_view(&st, &pc, &id, uid, e.status, flash_err(e)).await,
        },
        "deverrouiller" => match admin::unlock(&st, uid, &id, &pc.ctx).await {
            Ok(_) => redirect_with_flash(&back, "succes", "Compte déverrouillé."),
            Err(e) => user_view(&st, &pc, &id, uid, e.status, flash_err(e)).await,
        },
        _ => super::not_found().await,
    }
}

// ---- devices (ADMIN) -------------------------------------------------------------------------------------------

struct DeviceLine {
    id: Uuid,
    name: String,
    user: String,
    platform: String,
    version: String,
    last_sync: String,
    active: bool,
    tone: &'static str,
    status: &'static str,
    /// Sync events waiting, and failed in the last 24 h.
    pending: i64,
    failed: i64,
}

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage {
    layout: Layout,
    devices: Vec<DeviceLine>,
    statut: String,
    total: u64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DeviceFilterQuery {
    statut: String,
}

async fn devices_page(State(st): State<AppState>, pc: PageCtx, Query(q): Query<DeviceFilterQuery>) -> Response {
    let is_active = match q.statut.as_str() {
        "actif" => Some(true),
        "revoque" => Some(false),
        _ => None,
    };
    let f = store::identity::DeviceFilter { user_id: None, is_active };
    let (rows, total) = match store::identity::list_devices(st.dbmon.db(), &f, 1, 200).await {
        Ok(r) => r,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let now = st.clock.now();
    let mut counts = Vec::with_capacity(rows.len());
    for (d, _) in &rows {
        let n = store::sync::counts(st.dbmon.db().conn(), Some(d.id), now - chrono::Duration::hours(24)).await;
        counts.push(n.unwrap_or_default());
    }
    let devices = rows
        .into_iter()
        .zip(counts)
        .map(|((d, u), n)| {
            let stale = d.last_sync_at.is_none_or(|t| now - t > chrono::Duration::hours(24));
            let (tone, status) = if !d.is_active {
                ("rouge", "Révoqué")
            } else if stale && d.last_sync_at.is_some() {
                ("ambre", "Hors ligne > 24 h")
            } else {
                ("vert", "Actif")
            };
            DeviceLine {
                id: d.id,
                name: d.name,
                user: u.map(|u| u.email).unwrap_or_default(),
                platform: d.platform,
                version: d.app_version,
                last_sync: when(d.last_sync_at),
                active: d.is_active,
                tone,
                status,
                pending: n.pending,
                failed: n.failed,
            }
        })
        .collect();
    let p = DevicesPage {
        layout: Layout::for_page("Appareils", "/systeme/appareils", &pc),
        devices,
        statut: q.statut,
        total,
    };
    page(StatusCode::OK, p, &pc)
}

async fn device_action_page(
    State(st): State<AppState>,
    pc: PageCtx,
    Path((did, action)): Path<(Uuid, String)>,
) -> Response {
    let d = match store::identity::device(st.dbmon.db().conn(), did).await {
        Ok(Some(d)) => d,
        Ok(None) => return super::not_found().await,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let (title, text, button, danger, reason_min) = match action.as_str() {
        "revoquer" => (
            "Révoquer l'appareil",
            format!(
                "Révoquer « {} » ? Ses sessions sont fermées immédiatement ; à son prochain appel l'application efface ses données locales. Les envois non synchronisés de cet appareil seront perdus.",
                d.name
            ),
            "Révoquer",
            true,
            admin::MIN_REASON,
        ),
        "reactiver" => (
            "Réactiver l'appareil",
            format!("Réactiver « {} » ? Le livreur devra se reconnecter.", d.name),
            "Réactiver",
            false,
            0,
        ),
        _ => return super::not_found().await,
    };
    let p = ConfirmPage {
        layout: Layout::for_page(title, "/systeme/appareils", &pc),
        text,
        action: format!("/systeme/appareils/{did}/{action}"),
        back: "/systeme/appareils".into(),
        button,
        danger,
        reason_min,
        reason: String::new(),
    };
    page(StatusCode::OK, p, &pc)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ReasonForm {
    reason: String,
}

async fn device_action(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path((did, action)): Path<(Uuid, String)>,
    Form(f): Form<ReasonForm>,
) -> Response {
    let res = match action.as_str() {
        "revoquer" => {
            admin::revoke(&st, did, &f.reason, &id, &pc.ctx).await.map(|d| format!("Appareil « {} » révoqué.", d.name))
        }
        "reactiver" => {
            admin::reactivate(&st, did, &id, &pc.ctx).await.map(|d| format!("Appareil « {} » réactivé.", d.name))
        }
        _ => return super::not_found().await,
    };
    match res {
        Ok(msg) => redirect_with_flash("/systeme/appareils", "succes", &msg),
        Err(e) => {
            let mut layout = Layout::for_page("Révoquer l'appareil", "/systeme/appareils", &pc);
            layout.flash.push(super::Flash { tone: "erreur", text: e.message.clone() });
            let p = ConfirmPage {
                layout,
                text: "L'opération a été refusée ; corrigez puis confirmez.".into(),
                action: format!("/systeme/appareils/{did}/{action}"),
                back: "/systeme/appareils".into(),
                button: if action == "revoquer" { "Révoquer" } else { "Réactiver" },
                danger: action == "revoquer",
                reason_min: if action == "revoquer" { admin::MIN_REASON } else { 0 },
                reason: f.reason,
            };
            page(e.status, p, &pc)
        }
    }
}

// ---- audit (ADMIN, COMPTABLE) ----------------------------------------------------------------------------------

struct AuditLine {
    seq: i64,
    at: String,
    actor: String,
    role: String,
    action: String,
    security: bool,
    entity: String,
    reason: String,
}

#[derive(Default)]
struct AuditForm {
    action: String,
    severity: String,
    entity_type: String,
    from: String,
    to: String,
    user_id: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    chain_ok: bool,
    chain_text: String,
    q: AuditForm,
    rows: Vec<AuditLine>,
    next: Option<String>,
    error: Option<String>,
}

async fn audit_page(
    State(st): State<AppState>,
    pc: PageCtx,
    Query(q): Query<crate::api::audit::AuditQuery>,
) -> Response {
    let verification = match store::audit::verify(st.dbmon.db(), None).await {
        Ok(v) => v,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let chain_text = match &verification.broken {
        None => format!("{} entrées vérifiées, dernière n° {}.", verification.verified, verification.last_seq),
        Some(b) => format!(
            "{} Entrées intactes jusqu'au n° {}. Lancez « manchengo check --audit » et prévenez l'administrateur.",
            b.describe_fr(),
            verification.last_seq
        ),
    };
    let (rows, next, error) = match crate::api::audit::page(&st, &q).await {
        Ok((rows, next)) => (rows, next, None),
        Err(e) => (Vec::new(), None, Some(e.message)),
    };
    let form = AuditForm {
        action: q.action.clone().unwrap_or_default(),
        severity: q.severity.clone().unwrap_or_default(),
        entity_type: q.entity_type.clone().unwrap_or_default(),
        from: q.from.clone().unwrap_or_default(),
        to: q.to.clone().unwrap_or_default(),
        user_id: q.user_id.map(|u| u.to_string()).unwrap_or_default(),
    };
    let next = next.map(|c| {
        let mut pairs: Vec<(&str, String)> = vec![("cursor", c)];
        for (k, v) in [
            ("action", &form.action),
            ("severity", &form.severity),
            ("entityType", &form.entity_type),
            ("from", &form.from),
            ("to", &form.to),
            ("userId", &form.user_id),
        ] {
            if !v.is_empty() {
                pairs.push((k, v.clone()));
            }
        }
        format!("/systeme/audit?{}", serde_urlencoded::to_string(&pairs).unwrap_or_default())
    });
    let rows = rows
        .into_iter()
        .map(|r| AuditLine {
            seq: r.seq,
            at: when(Some(r.at)),
            actor: r.actor_label.clone().unwrap_or_else(|| "—".into()),
            role: r.actor_role.clone().unwrap_or_else(|| "—".into()),
            security: r.severity == "SECURITY",
            action: r.action,
            entity: match (r.entity_type, r.entity_id) {
                (Some(t), Some(i)) => format!("{t} {i}"),
                (Some(t), None) => t,
                _ => "—".into(),
            },
            reason: r.reason.unwrap_or_default(),
        })
        .collect();
    let p = AuditPage {
        layout: Layout::for_page("Journal d'audit", "/systeme/audit", &pc),
        chain_ok: verification.broken.is_none(),
        chain_text,
        q: form,
        rows,
        next,
        error,
    };
    page(StatusCode::OK, p, &pc)
}

#[derive(Template)]
#[template(path = "audit_entry.html")]
struct AuditEntryPage {
    layout: Layout,
    seq: i64,
    facts: Vec<(&'static str, String)>,
    before: String,
    after: String,
}

async fn audit_entry(State(st): State<AppState>, pc: PageCtx, Path(seq): Path<i64>) -> Response {
    let r = match store::audit::get(st.dbmon.db(), seq).await {
        Ok(Some(r)) => r,
        Ok(None) => return super::not_found().await,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let pretty = |s: &Option<String>| {
        s.as_deref()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| "—".into())
    };
    let dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "—".into());
    let facts = vec![
        ("Date", when(Some(r.at))),
        ("Action", r.action.clone()),
        ("Gravité", if r.severity == "SECURITY" { "Sécurité".into() } else { "Information".into() }),
        ("Utilisateur / tâche", dash(&r.actor_label)),
        ("Rôle", dash(&r.actor_role)),
        ("Objet", format!("{} {}", dash(&r.entity_type), dash(&r.entity_id))),
        ("Motif", dash(&r.reason)),
        ("Adresse IP", dash(&r.ip)),
        ("Appareil", dash(&r.device_id)),
        ("Référence de requête", dash(&r.request_id)),
        ("Identifiant de commande", dash(&r.command_id)),
        ("Empreinte précédente", r.prev_hash.clone()),
        ("Empreinte", r.hash.clone()),
    ];
    let p = AuditEntryPage {
        layout: Layout::for_page(&format!("Entrée d'audit n° {seq}"), "/systeme/audit", &pc),
        seq,
        facts,
        before: pretty(&r.before),
        after: pretty(&r.after),
    };
    page(StatusCode::OK, p, &pc)
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/connexion", get(login_page).post(login_submit))
        .route("/deconnexion", post(logout))
        .route("/installation", get(install_page).post(install_submit))
        .route("/mot-de-passe", get(password_page).post(password_submit))
        .route("/mon-compte", get(account_page))
        .route("/mon-compte/sessions/{id}/fermer", post(close_session))
        .route("/systeme/utilisateurs", get(users_page))
        .route("/systeme/utilisateurs/nouveau", get(new_user_page).post(new_user_submit))
        .route("/systeme/utilisateurs/{id}", get(user_page).post(user_submit))
        .route("/systeme/utilisateurs/{id}/{action}", get(user_action_page).post(user_action))
        .route("/systeme/appareils", get(devices_page))
        .route("/systeme/appareils/{id}/{action}", get(device_action_page).post(device_action))
        .route("/systeme/audit", get(audit_page))
        .route("/systeme/audit/{seq}", get(audit_entry))
}
