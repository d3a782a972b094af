//! `patchbay.v1.AccountService`: authorise, turn the request into domain values, run
//! the operation in `domain::accounts`, and turn the result back.

use std::sync::Arc;

use patchbay_sdk::proto::{self, account_service_server::AccountService};
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

use super::auth::authorize;
use super::convert::{
    channel_to_proto, optional_channel, optional_document, required_channel, struct_from_document,
    timestamp,
};
use super::default_watch::{self, DefaultsStream};
use super::idempotency::{Idempotency, replayed_id};
use super::meta_flows;
use super::shares::WorkspaceShares;
use crate::domain::Caller;
use crate::domain::support::{PageRequest, parse_id};
use crate::domain::{AccountPatch, AccountView, Accounts, Action, Error, NewAccount, Violations};

/// How many channels there are: a watch names at most that many distinct ones.
const MAX_DISTINCT_CHANNELS: usize = crate::domain::Channel::ALL.len();

pub struct AccountGrpc {
    accounts: Accounts,
    idempotency: Idempotency,
    /// One permit per open WatchDefaultAccounts stream: an open stream holds no call
    /// permit of the overload layer, so this is what bounds them.
    watch_streams: Arc<Semaphore>,
    /// Each workspace's share of them.
    watch_shares: Arc<WorkspaceShares>,
}

impl AccountGrpc {
    pub fn new(
        accounts: Accounts,
        idempotency: Idempotency,
        max_watch_streams: usize,
        max_watch_streams_per_workspace: usize,
    ) -> Self {
        Self {
            accounts,
            idempotency,
            watch_streams: Arc::new(Semaphore::new(max_watch_streams)),
            watch_shares: Arc::new(WorkspaceShares::new(max_watch_streams_per_workspace)),
        }
    }
}

#[tonic::async_trait]
impl AccountService for AccountGrpc {
    // The Meta flows: handlers in `meta_flows`.

    async fn get_whats_app_health(
        &self,
        request: Request<proto::GetWhatsAppHealthRequest>,
    ) -> Result<Response<proto::GetWhatsAppHealthResponse>, Status> {
        meta_flows::whatsapp_health(&self.accounts, request).await
    }

    async fn complete_whats_app_signup(
        &self,
        request: Request<proto::CompleteWhatsAppSignupRequest>,
    ) -> Result<Response<proto::CompleteWhatsAppSignupResponse>, Status> {
        self.idempotency
            .run(
                request,
                Action::CompleteWhatsAppSignup,
                |caller, request| {
                    meta_flows::complete_whatsapp_signup(&self.accounts, caller, request)
                },
                |caller, _, record| async move {
                    let view = self.accounts.resume(&caller, replayed_id(&record)?).await?;
                    Ok(meta_flows::signup_response(view))
                },
            )
            .await
    }

    async fn connect_instagram(
        &self,
        request: Request<proto::ConnectInstagramRequest>,
    ) -> Result<Response<proto::ConnectInstagramResponse>, Status> {
        self.idempotency
            .run(
                request,
                Action::ConnectInstagram,
                |caller, request| meta_flows::connect_instagram(&self.accounts, caller, request),
                |caller, _, record| async move {
                    let view = self.replayed_account(&caller, &record).await?;
                    Ok(meta_flows::instagram_response(view))
                },
            )
            .await
    }

    async fn connect_messenger(
        &self,
        request: Request<proto::ConnectMessengerRequest>,
    ) -> Result<Response<proto::ConnectMessengerResponse>, Status> {
        self.idempotency
            .run(
                request,
                Action::ConnectMessenger,
                |caller, request| meta_flows::connect_messenger(&self.accounts, caller, request),
                // It writes no record: its answer is kept (sealed) instead.
                |_, _, record| async move {
                    Err(Error::Internal(format!(
                        "ConnectMessenger's key names {} {}",
                        record.kind, record.id
                    ))
                    .into())
                },
            )
            .await
    }

    async fn subscribe_messenger_pages(
        &self,
        request: Request<proto::SubscribeMessengerPagesRequest>,
    ) -> Result<Response<proto::SubscribeMessengerPagesResponse>, Status> {
        self.idempotency
            .run_resumable(
                request,
                Action::SubscribeMessengerPages,
                |caller, request| {
                    meta_flows::subscribe_messenger_pages(&self.accounts, caller, request)
                },
                |caller, first| meta_flows::refresh_page_results(&self.accounts, caller, first),
            )
            .await
    }

    async fn set_messenger_persistent_menu(
        &self,
        request: Request<proto::SetMessengerPersistentMenuRequest>,
    ) -> Result<Response<proto::SetMessengerPersistentMenuResponse>, Status> {
        self.idempotency
            .run_resumable(
                request,
                Action::SetMessengerPersistentMenu,
                |caller, request| {
                    meta_flows::set_messenger_persistent_menu(&self.accounts, caller, request)
                },
                |_, first| async move { Ok(first) },
            )
            .await
    }

    async fn list_accounts(
        &self,
        mut request: Request<proto::ListAccountsRequest>,
    ) -> Result<Response<proto::ListAccountsResponse>, Status> {
        let caller = authorize(&mut request, Action::ListAccounts)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let channel = violations
            .check(optional_channel(request.channel, "channel"))
            .flatten();
        let page = PageRequest::parse(request.page_size, &request.page_token, &mut violations);
        violations.into_result()?;

        let page = self.accounts.list(&caller, channel, page).await?;
        let (accounts, next_page_token) = super::convert::fit_page(
            page.items.into_iter().map(account_to_proto).collect(),
            page.next_page_token,
            |account| account.id.as_str(),
        );
        Ok(Response::new(proto::ListAccountsResponse {
            accounts,
            next_page_token,
        }))
    }

    async fn create_account(
        &self,
        request: Request<proto::CreateAccountRequest>,
    ) -> Result<Response<proto::CreateAccountResponse>, Status> {
        self.idempotency
            .run(
                request,
                Action::CreateAccount,
                |caller, request| self.create_account_now(caller, request),
                |caller, _, record| async move {
                    let view = self.accounts.resume(&caller, replayed_id(&record)?).await?;
                    Ok(proto::CreateAccountResponse {
                        account: Some(account_to_proto(view)),
                    })
                },
            )
            .await
    }

    async fn get_account(
        &self,
        mut request: Request<proto::GetAccountRequest>,
    ) -> Result<Response<proto::GetAccountResponse>, Status> {
        let caller = authorize(&mut request, Action::GetAccount)?;
        let id = parse_id(&request.get_ref().id, "id").map_err(invalid)?;
        let view = self.accounts.get(&caller, id).await?;
        Ok(Response::new(proto::GetAccountResponse {
            account: Some(account_to_proto(view)),
        }))
    }

    async fn update_account(
        &self,
        request: Request<proto::UpdateAccountRequest>,
    ) -> Result<Response<proto::UpdateAccountResponse>, Status> {
        self.idempotency
            .run(
                request,
                Action::UpdateAccount,
                |caller, request| self.update_account_now(caller, request),
                |caller, _, record| async move {
                    Ok(proto::UpdateAccountResponse {
                        account: Some(account_to_proto(
                            self.replayed_account(&caller, &record).await?,
                        )),
                    })
                },
            )
            .await
    }

    async fn delete_account(
        &self,
        request: Request<proto::DeleteAccountRequest>,
    ) -> Result<Response<proto::DeleteAccountResponse>, Status> {
        self.idempotency
            .run(
                request,
                Action::DeleteAccount,
                |caller, request| self.delete_account_now(caller, request),
                |_, _, _| async { Ok(proto::DeleteAccountResponse {}) },
            )
            .await
    }

    async fn set_default_account(
        &self,
        request: Request<proto::SetDefaultAccountRequest>,
    ) -> Result<Response<proto::SetDefaultAccountResponse>, Status> {
        self.idempotency
            .run(
                request,
                Action::SetDefaultAccount,
                |caller, request| self.set_default_account_now(caller, request),
                |caller, _, record| async move {
                    Ok(proto::SetDefaultAccountResponse {
                        account: Some(account_to_proto(
                            self.replayed_account(&caller, &record).await?,
                        )),
                    })
                },
            )
            .await
    }

    async fn get_account_credentials(
        &self,
        mut request: Request<proto::GetAccountCredentialsRequest>,
    ) -> Result<Response<proto::GetAccountCredentialsResponse>, Status> {
        let caller = authorize(&mut request, Action::GetAccountCredentials)?;
        let id = parse_id(&request.get_ref().id, "id").map_err(invalid)?;
        let account = self.accounts.credentials(&caller, id).await?;
        Ok(Response::new(proto::GetAccountCredentialsResponse {
            account_id: account.id.to_string(),
            channel: channel_to_proto(account.channel).into(),
            account_key: account.account_key,
            config: Some(struct_from_document(&account.config)),
            verify_token: account.verify_token,
            revision: account.revision,
        }))
    }

    type WatchDefaultAccountsStream = DefaultsStream;

    async fn watch_default_accounts(
        &self,
        mut request: Request<proto::WatchDefaultAccountsRequest>,
    ) -> Result<Response<DefaultsStream>, Status> {
        let mut caller = authorize(&mut request, Action::WatchDefaultAccounts)?;
        let Some(share) = self.watch_shares.try_take(&caller.workspace_id) else {
            return Err(Status::resource_exhausted(
                "this workspace is at its share of open watch streams; retry with backoff",
            ));
        };
        let Ok(permit) = self.watch_streams.clone().try_acquire_owned() else {
            return Err(Status::resource_exhausted(
                "the server is at its limit of open watch streams; retry with backoff",
            ));
        };
        // An open stream counts against the watch share, not the share of calls in
        // flight.
        caller.held = None;
        let request = request.into_inner();
        let mut violations = Violations::new();
        // Repeats are one channel, and there are eight channels: more distinct values
        // than that is one violation, not one per entry (no work per repeated byte).
        let mut distinct: Vec<(usize, i32)> = Vec::new();
        for (i, &value) in request.channels.iter().enumerate() {
            if distinct.iter().all(|&(_, seen)| seen != value) {
                distinct.push((i, value));
                if distinct.len() > MAX_DISTINCT_CHANNELS {
                    break;
                }
            }
        }
        let mut channels: Vec<crate::domain::Channel> = Vec::new();
        if distinct.len() > MAX_DISTINCT_CHANNELS {
            violations.add(
                "channels",
                format!("names more than the {MAX_DISTINCT_CHANNELS} channels there are"),
            );
        } else {
            for (i, value) in distinct {
                if let Some(channel) =
                    violations.check(required_channel(value, &format!("channels[{i}]")))
                {
                    channels.push(channel);
                }
            }
        }
        violations.into_result()?;
        let division = Some(request.division_id).filter(|d| !d.is_empty());
        let watch = self
            .accounts
            .watch_defaults(&caller, channels, division)
            .await?;
        Ok(Response::new(default_watch::stream(
            self.accounts.clone(),
            caller,
            watch,
            (permit, share),
        )))
    }

    async fn get_default_account(
        &self,
        mut request: Request<proto::GetDefaultAccountRequest>,
    ) -> Result<Response<proto::GetDefaultAccountResponse>, Status> {
        let caller = authorize(&mut request, Action::GetDefaultAccount)?;
        let request = request.into_inner();
        let channel = required_channel(request.channel, "channel").map_err(invalid)?;
        let division = Some(request.division_id).filter(|d| !d.is_empty());
        let view = self
            .accounts
            .get_default(&caller, channel, division)
            .await?;
        Ok(Response::new(proto::GetDefaultAccountResponse {
            account: Some(account_to_proto(view)),
        }))
    }
}

fn invalid(violation: crate::domain::FieldViolation) -> Status {
    Error::InvalidArgument(vec![violation]).into()
}

impl TryFrom<proto::CreateAccountRequest> for NewAccount {
    type Error = Error;

    fn try_from(request: proto::CreateAccountRequest) -> Result<Self, Error> {
        let mut violations = Violations::new();
        let channel = violations.check(required_channel(request.channel, "channel"));
        let config = optional_document(request.config, "config", &mut violations);
        violations.into_result()?;
        let Some(channel) = channel else {
            return Err(Error::Internal(
                "create request incomplete after validation".to_owned(),
            ));
        };
        Ok(NewAccount {
            channel,
            account_key: request.account_key,
            display_name: request.display_name,
            is_active: request.is_active,
            is_default: request.is_default,
            division_id: request.division_id,
            config: config.unwrap_or_default(),
        })
    }
}

pub fn account_to_proto(view: AccountView) -> proto::Account {
    let account = &*view.account;
    proto::Account {
        id: account.id.to_string(),
        channel: channel_to_proto(account.channel).into(),
        account_key: account.account_key.clone(),
        display_name: account.display_name.clone(),
        is_active: account.is_active,
        is_default: account.is_default,
        division_id: account.division_id.clone(),
        config: Some(struct_from_document(&account.config)),
        verify_token: view.verify_token().to_owned(),
        created_at: Some(timestamp(account.created_at)),
        updated_at: Some(timestamp(account.updated_at)),
        revision: account.revision,
        webhook_url: view.webhook_url,
        setup_error: account
            .provider_state
            .setup_error
            .clone()
            .unwrap_or_default(),
        reauthorization_required: account.provider_state.reauthorization_required,
        token_expires_at: account.provider_state.token_expires_at.map(timestamp),
        setup_state: setup_state_to_proto(account.provider_state.setup_state).into(),
    }
}

fn setup_state_to_proto(state: crate::domain::SetupState) -> proto::SetupState {
    use crate::domain::SetupState;
    match state {
        SetupState::NotNeeded => proto::SetupState::NotNeeded,
        SetupState::Pending => proto::SetupState::Pending,
        SetupState::Done => proto::SetupState::Done,
        SetupState::Failed => proto::SetupState::Failed,
    }
}

/// The mutating calls themselves; the trait methods run them through idempotency keys.
impl AccountGrpc {
    /// The account a replayed call wrote, as the caller may see it now.
    async fn replayed_account(
        &self,
        caller: &Caller,
        record: &crate::domain::idempotency::RecordRef,
    ) -> Result<AccountView, Status> {
        Ok(self.accounts.get(caller, replayed_id(record)?).await?)
    }

    async fn create_account_now(
        &self,
        caller: Caller,
        request: Request<proto::CreateAccountRequest>,
    ) -> Result<Response<proto::CreateAccountResponse>, Status> {
        let new = NewAccount::try_from(request.into_inner())?;
        let view = self.accounts.create(&caller, new).await?;
        Ok(Response::new(proto::CreateAccountResponse {
            account: Some(account_to_proto(view)),
        }))
    }
    async fn update_account_now(
        &self,
        caller: Caller,
        request: Request<proto::UpdateAccountRequest>,
    ) -> Result<Response<proto::UpdateAccountResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let id = violations.check(parse_id(&request.id, "id"));
        let config = optional_document(request.config, "config", &mut violations);
        violations.into_result()?;
        let Some(id) = id else {
            return Err(Status::internal("id missing after validation"));
        };
        let patch = AccountPatch {
            account_key: request.account_key,
            display_name: request.display_name,
            is_active: request.is_active,
            is_default: request.is_default,
            division_id: request.division_id,
            config,
            expected_revision: request.expected_revision,
        };
        let view = self.accounts.update(&caller, id, patch).await?;
        Ok(Response::new(proto::UpdateAccountResponse {
            account: Some(account_to_proto(view)),
        }))
    }
    async fn delete_account_now(
        &self,
        caller: Caller,
        request: Request<proto::DeleteAccountRequest>,
    ) -> Result<Response<proto::DeleteAccountResponse>, Status> {
        let request = request.into_inner();
        let id = parse_id(&request.id, "id").map_err(invalid)?;
        self.accounts
            .delete(&caller, id, request.expected_revision)
            .await?;
        Ok(Response::new(proto::DeleteAccountResponse {}))
    }
    async fn set_default_account_now(
        &self,
        caller: Caller,
        request: Request<proto::SetDefaultAccountRequest>,
    ) -> Result<Response<proto::SetDefaultAccountResponse>, Status> {
        let request = request.into_inner();
        let id = parse_id(&request.id, "id").map_err(invalid)?;
        let view = self
            .accounts
            .set_default(&caller, id, request.expected_revision)
            .await?;
        Ok(Response::new(proto::SetDefaultAccountResponse {
            account: Some(account_to_proto(view)),
        }))
    }
}
