//! `kycd admin`: tenants, keys and the operator token, straight on the data directory.

use clap::Subcommand;
use serde::Serialize;

use crate::auth::keys;
use crate::auth::permissions::Permission;
use crate::config::Config;
use crate::server::open_store;
use crate::tenancy;
use crate::tenancy::plans::Module;

const ACTOR: &str = "cli";

/// Operator subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Plans: quotas, prices, discount tiers and rate limits.
    Plan {
        #[command(subcommand)]
        command: super::billing::PlanCommand,
    },
    /// A tenant's invoice for a month: a line per module and price, and the total.
    Invoice {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// YYYY-MM (UTC); the current month when absent.
        #[arg(long)]
        month: Option<String>,
        /// Print CSV.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the operator token for /admin/v1 (from KYCD_ADMIN_TOKEN or <data-dir>/admin.token).
    Token,
    /// People who sign in to a tenant's console (`/console`).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The operator's people, who sign in to `/admin`.
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
}

/// Operator-account subcommands.
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Create an operator account; prints a generated password once (or reads one from
    /// KYCD_USER_PASSWORD) and, for a superadmin, the second factor's secret once.
    Create {
        /// Sign-in email.
        #[arg(long)]
        email: String,
        /// superadmin, support or billing.
        #[arg(long)]
        role: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Console-user subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a console user; prints a generated password once (or reads one from
    /// KYCD_USER_PASSWORD).
    Create {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// Sign-in email.
        #[arg(long)]
        email: String,
        /// owner, admin, reviewer or viewer.
        #[arg(long)]
        role: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Tenant subcommands.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Plan: free, pro or enterprise.
        #[arg(long, default_value = "free")]
        plan: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List tenants.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Suspend a tenant: its requests are refused until it is activated.
    Suspend {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set how long the tenant's media is kept (0 days = store none) and which kinds.
    MediaPolicy {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// Days, 0 to 3650.
        #[arg(long)]
        days: i64,
        /// Kinds kept, comma-separated (selfie, document_front, document_back, face_crop, frame).
        #[arg(long, default_value = "selfie,face_crop,document_front,document_back")]
        kinds: String,
    },
    /// Move a tenant to another plan and/or set its overrides (a JSON merge patch over the plan,
    /// such as {"modules":{"ocr":{"monthly_quota":150}}}).
    Plan {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// free, pro or enterprise; unchanged when absent.
        #[arg(long)]
        plan: Option<String>,
        /// A JSON file with the overrides.
        #[arg(long)]
        overrides: Option<std::path::PathBuf>,
        /// Remove the tenant's overrides.
        #[arg(long, conflicts_with = "overrides")]
        clear_overrides: bool,
    },
    /// Reactivate a suspended tenant.
    Activate {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Key subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key; its secret is printed once and cannot be shown again.
    Create {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// Free-form label.
        #[arg(long)]
        label: Option<String>,
        /// Also issue a Facia-compatible `hash_id` for `POST /process_face` (printed once).
        #[arg(long)]
        facia_hash: bool,
        /// Modules the key may call, comma-separated (liveness, ocr, validation, face_match);
        /// all when absent.
        #[arg(long, value_delimiter = ',')]
        scopes: Option<Vec<String>>,
        /// What the key may read or manage, comma-separated (results:read, results:read_all,
        /// media:read, media:write, subjects:erase, workflow:read, workflow:write, webhooks:read,
        /// webhooks:write, audit:read, usage:read, faces:write, faces:search); default
        /// results:read.
        #[arg(long, value_delimiter = ',')]
        permissions: Option<Vec<String>>,
        /// sandbox or live (default: sandbox on the Free plan, live otherwise).
        #[arg(long)]
        environment: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change what a key may do (audited): its permissions and/or module scopes.
    Grant {
        /// Key id.
        #[arg(long)]
        key: String,
        /// The key's whole permission list, comma-separated ("" for none).
        #[arg(long, value_delimiter = ',')]
        permissions: Option<Vec<String>>,
        /// The key's modules, comma-separated, or `all`.
        #[arg(long, value_delimiter = ',')]
        scopes: Option<Vec<String>>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never their secrets).
    List {
        /// Only this tenant's keys.
        #[arg(long)]
        tenant: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Give a key a new secret (printed once); the old one keeps verifying for --overlap.
    Rotate {
        /// Key id.
        #[arg(long)]
        key: String,
        /// How long the old secret still verifies: 0, 30m, 24h, 7d… (at most 30 days).
        #[arg(long, default_value = "24h", value_parser = parse_overlap)]
        overlap: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key at once.
    Revoke {
        /// Key id.
        #[arg(long)]
        key: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_modules(list: &[String]) -> anyhow::Result<Vec<Module>> {
    list.iter()
        .map(|m| {
            Module::parse(m.trim()).ok_or_else(|| anyhow::anyhow!("unknown module {m} in --scopes"))
        })
        .collect()
}

fn parse_permissions(list: &[String]) -> anyhow::Result<Vec<Permission>> {
    list.iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .map(|p| {
            Permission::parse(p).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown permission {p}; known: {}",
                    Permission::ALL.map(Permission::as_str).join(", ")
                )
            })
        })
        .collect()
}

fn parse_overlap(s: &str) -> Result<i64, String> {
    if s == "0" {
        return Ok(0);
    }
    humantime::parse_duration(s)
        .map(|d| d.as_secs() as i64)
        .map_err(|e| format!("{e} (examples: 0, 90s, 30m, 24h, 7d)"))
}

fn print<T: Serialize>(json: bool, value: &T, human: impl FnOnce(&T) -> String) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).expect("serialisable")
        );
    } else {
        println!("{}", human(value));
    }
}

/// Runs one admin subcommand.
pub fn run(config: &Config, command: AdminCommand) -> anyhow::Result<()> {
    if let AdminCommand::Token = command {
        let path = config.admin_token_path();
        match &config.admin_token {
            Some(t) => println!("{t}"),
            None => {
                crate::server::admin_token(config)?;
                println!("{}", std::fs::read_to_string(path)?.trim());
            }
        }
        return Ok(());
    }
    let store = open_store(config)?;
    match command {
        AdminCommand::Token => unreachable!("handled above"),
        AdminCommand::User {
            command:
                UserCommand::Create {
                    tenant,
                    email,
                    role,
                    json,
                },
        } => {
            use crate::console::users;
            let Some(role) = users::Role::parse(&role) else {
                anyhow::bail!("--role is owner, admin, reviewer or viewer");
            };
            let (password, generated) = match std::env::var("KYCD_USER_PASSWORD") {
                Ok(p) if !p.is_empty() => (p, false),
                _ => (users::generate_password(), true),
            };
            let u = users::create_user(
                &store,
                crate::store::console::Realm::Tenant,
                &tenant,
                &email,
                role.as_str(),
                &password,
                ACTOR,
            )?;
            let mut out = serde_json::json!({ "user_id": u.id, "tenant_id": u.tenant_id, "email": u.email, "role": u.role });
            if generated {
                out["password"] = serde_json::json!(password);
            }
            print(json, &out, |_| {
                let shown = if generated {
                    format!("; password (shown once): {password}")
                } else {
                    String::new()
                };
                format!(
                    "created {} user {} for tenant {}{shown}",
                    u.role, u.email, u.tenant_id
                )
            });
        }
        AdminCommand::Operator {
            command: OperatorCommand::Create { email, role, json },
        } => {
            use crate::console::{operators, totp, users};
            let Some(role) = operators::OperatorRole::parse(&role) else {
                anyhow::bail!("--role is superadmin, support or billing");
            };
            let (password, generated) = match std::env::var("KYCD_USER_PASSWORD") {
                Ok(p) if !p.is_empty() => (p, false),
                _ => (users::generate_password(), true),
            };
            let made = operators::create_operator(&store, &email, role, &password, ACTOR)?;
            let u = &made.user;
            let mut out =
                serde_json::json!({ "operator_id": u.id, "email": u.email, "role": u.role });
            if generated {
                out["password"] = serde_json::json!(password);
            }
            if let Some(secret) = &made.totp_secret {
                out["totp_secret"] = serde_json::json!(secret);
                out["totp_url"] = serde_json::json!(totp::otpauth_url(&u.email, secret));
            }
            print(json, &out, |_| {
                let mut text = format!("created {} operator {}", u.role, u.email);
                if generated {
                    text.push_str(&format!("; password (shown once): {password}"));
                }
                if let Some(secret) = &made.totp_secret {
                    text.push_str(&format!(
                        "\nsecond factor (shown once; add it to an authenticator app): {}",
                        totp::otpauth_url(&u.email, secret)
                    ));
                }
                text
            });
        }
        AdminCommand::Plan { command } => super::billing::run_plan(&store, command)?,
        AdminCommand::Invoice {
            tenant,
            month,
            csv,
            json,
        } => super::billing::print_invoice(&store, &tenant, month, csv, json)?,
        AdminCommand::Tenant { command } => match command {
            TenantCommand::Create { name, plan, json } => {
                let t = tenancy::create_tenant(&store, &name, &plan, ACTOR)?;
                let out = serde_json::json!({ "tenant_id": t.id, "name": t.name, "plan": t.plan, "status": t.status });
                print(json, &out, |_| {
                    format!("created tenant {} ({}, plan {})", t.id, t.name, t.plan)
                });
            }
            TenantCommand::List { json } => {
                let list = tenancy::list_tenants(&store)?;
                print(json, &list, |l| {
                    l.iter()
                        .map(|t| format!("{}\t{}\t{}\t{}", t.id, t.status, t.plan, t.name))
                        .collect::<Vec<_>>()
                        .join("\n")
                });
            }
            TenantCommand::Suspend { tenant, json } => {
                let t = tenancy::set_active(&store, &tenant, false, ACTOR)?;
                print(json, &t, |t| format!("tenant {} is {}", t.id, t.status));
            }
            TenantCommand::MediaPolicy {
                tenant,
                days,
                kinds,
            } => {
                let kinds = kinds
                    .split(',')
                    .filter(|k| !k.trim().is_empty())
                    .map(|k| serde_json::from_value(serde_json::Value::String(k.trim().to_owned())))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| anyhow::anyhow!("unknown media kind in --kinds"))?;
                let policy = tenancy::MediaPolicy {
                    media_retention_days: days,
                    media_kinds: kinds,
                };
                let p = tenancy::set_media_policy(&store, &tenant, &policy, ACTOR)?;
                println!(
                    "tenant {tenant} keeps {:?} for {} days",
                    p.media_kinds, p.media_retention_days
                );
            }
            TenantCommand::Plan {
                tenant,
                plan,
                overrides,
                clear_overrides,
            } => super::billing::set_tenant_plan(
                &store,
                &tenant,
                plan.as_deref(),
                overrides.as_ref(),
                clear_overrides,
            )?,
            TenantCommand::Activate { tenant, json } => {
                let t = tenancy::set_active(&store, &tenant, true, ACTOR)?;
                print(json, &t, |t| format!("tenant {} is {}", t.id, t.status));
            }
        },
        AdminCommand::Key { command } => match command {
            KeyCommand::Create {
                tenant,
                label,
                facia_hash,
                scopes,
                permissions,
                environment,
                json,
            } => {
                let spec = keys::KeySpec {
                    label,
                    facia_hash_id: facia_hash,
                    scopes: scopes.as_deref().map(parse_modules).transpose()?,
                    permissions: permissions.as_deref().map(parse_permissions).transpose()?,
                    environment,
                };
                let k = keys::create_key_with(&store, &tenant, &spec, ACTOR)?;
                let mut out = serde_json::json!({ "key_id": k.key.id, "tenant_id": k.key.tenant_id, "secret": k.secret });
                if let Some(h) = &k.facia_hash_id {
                    out["facia_hash_id"] = h.as_str().into();
                }
                print(json, &out, |_| {
                    let facia = k
                        .facia_hash_id
                        .as_deref()
                        .map(|h| format!("facia hash_id: {h}\n"))
                        .unwrap_or_default();
                    format!(
                        "key_id: {}\nsecret: {}\n{facia}(shown only now; store them safely)",
                        k.key.id, k.secret
                    )
                });
            }
            KeyCommand::List { tenant, json } => {
                let list = keys::list_keys(&store, tenant.as_deref())?;
                print(json, &list, |l| {
                    l.iter()
                        .map(|k| format!("{}\t{}\t{}", k.id, k.tenant_id, k.status))
                        .collect::<Vec<_>>()
                        .join("\n")
                });
            }
            KeyCommand::Rotate { key, overlap, json } => {
                let k = keys::rotate_key(&store, &key, overlap, ACTOR)?;
                let out = serde_json::json!({
                    "key_id": k.key.id,
                    "secret": k.secret,
                    "previous_secret_valid_until": k.key.previous_secret_valid_until,
                });
                print(json, &out, |_| {
                    format!(
                        "key_id: {}\nnew secret: {}\nthe old secret verifies for {overlap} s more\n(shown only now; store it safely)",
                        k.key.id, k.secret
                    )
                });
            }
            KeyCommand::Grant {
                key,
                permissions,
                scopes,
                json,
            } => {
                let scopes = match scopes.as_deref() {
                    None => None,
                    Some([all]) if all == "all" => Some(None),
                    Some(list) => Some(Some(parse_modules(list)?)),
                };
                let change = keys::GrantChange {
                    scopes,
                    permissions: permissions.as_deref().map(parse_permissions).transpose()?,
                };
                let k = keys::set_grants(&store, &key, &change, ACTOR)?;
                print(json, &k, |k| {
                    format!(
                        "key {}\nscopes: {}\npermissions: {}",
                        k.id,
                        k.scopes.as_ref().map_or("all".into(), |s| s.join(",")),
                        k.permissions.join(",")
                    )
                });
            }
            KeyCommand::Revoke { key, json } => {
                let k = keys::revoke_key(&store, &key, ACTOR)?;
                print(json, &k, |k| format!("key {} revoked", k.id));
            }
        },
    }
    Ok(())
}
