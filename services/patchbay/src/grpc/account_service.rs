//! `patchbay.v1.AccountService`. Each handler: authorise its action, convert the
//! request (`convert::account`, `convert::meta`), run one operation of `app::accounts`
//! (through its idempotency key when it writes), and convert the answer back.

use std::sync::Arc;

use patchbay_sdk::proto::{self, account_service_server::AccountService};
use tokio::sync::Semaphore;
use tonic::{Code, Request, Response, Status};

use super::compression::{answer_for, secret_answer};

use super::account_events::{self, EventsStream};
use super::auth::caller_of;
use super::convert::account::{
    account_to_proto, credentials_to_proto, division_filter, watched_channels,
};
use super::convert::meta::{
    MenuChange, health_to_proto, instagram_to_proto, messenger_to_proto, page_failed,
    page_result_to_proto, signup_to_proto,
};
use super::convert::required_channel;
use super::convert::writes::{FallbackList, Listed, Update};
use super::convert::{fit_page, optional_channel};
use super::default_watch::{self, DefaultsStream};
use super::idempotency::{Idempotency, replayed_id};
use super::shares::WorkspaceShares;
use crate::app::{AccountView, Accounts};
use crate::domain::idempotency::RecordRef;
use crate::domain::ids::parse_id;
use crate::domain::pages::PageRequest;
use crate::domain::{Caller, Error, Violations};

pub struct AccountGrpc {
    pub(super) accounts: Accounts,
    idempotency: Idempotency,
    /// One permit per open WatchDefaultAccounts stream: an open stream holds no call
    /// permit of the overload layer, so this is what bounds them.
    pub(super) watch_streams: Arc<Semaphore>,
    /// Each workspace's share of them.
    pub(super) watch_shares: Arc<WorkspaceShares>,
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

    /// The account a replayed call wrote, as the caller may see it now.
    async fn replayed(&self, caller: &Caller, record: &RecordRef) -> Result<AccountView, Error> {
        self.accounts.get(caller, replayed_id(record)?).await
    }

    /// As [`replayed`](Self::replayed), its WhatsApp set-up resumed when it never ran
    /// to the end.
    async fn resumed(&self, caller: &Caller, record: &RecordRef) -> Result<AccountView, Error> {
        self.accounts.resume(caller, replayed_id(record)?).await
    }
}

#[tonic::async_trait]
impl AccountService for AccountGrpc {
    async fn list_accounts(
        &self,
        mut request: Request<proto::ListAccountsRequest>,
    ) -> Result<Response<proto::ListAccountsResponse>, Status> {
        let caller = caller_of(&mut request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let channel = violations
            .check(optional_channel(request.channel, "channel"))
            .flatten();
        let page = PageRequest::parse(request.page_size, &request.page_token, &mut violations);
        violations.into_result()?;
        let page = self.accounts.list(&caller, channel, page).await?;
        let (accounts, next_page_token) = fit_page(
            page.items.into_iter().map(account_to_proto).collect(),
            page.next_page_token,
            |account| account.id.as_str(),
        );
        Ok(answer_for(
            caller.sees_setup_secrets(),
            proto::ListAccountsResponse {
                accounts,
                next_page_token,
            },
        ))
    }

    async fn get_account(
        &self,
        mut request: Request<proto::GetAccountRequest>,
    ) -> Result<Response<proto::GetAccountResponse>, Status> {
        let caller = caller_of(&mut request)?;
        let id = parse_id(&request.get_ref().id, "id")?;
        let view = self.accounts.get(&caller, id).await?;
        Ok(answer_for(
            caller.sees_setup_secrets(),
            proto::GetAccountResponse {
                account: Some(account_to_proto(view)),
            },
        ))
    }

    async fn create_account(
        &self,
        request: Request<proto::CreateAccountRequest>,
    ) -> Result<Response<proto::CreateAccountResponse>, Status> {
        let create = async |caller: Caller, new| self.accounts.create(&caller, new).await;
        let replay = async |caller: Caller, _, record| self.resumed(&caller, &record).await;
        self.idempotency.write(request, create, replay).await
    }

    async fn update_account(
        &self,
        request: Request<proto::UpdateAccountRequest>,
    ) -> Result<Response<proto::UpdateAccountResponse>, Status> {
        let update = async |caller: Caller, Update { id, patch }| {
            self.accounts.update(&caller, id, patch).await
        };
        let replay = async |caller: Caller, _, record| self.replayed(&caller, &record).await;
        self.idempotency.write(request, update, replay).await
    }

    async fn delete_account(
        &self,
        request: Request<proto::DeleteAccountRequest>,
    ) -> Result<Response<proto::DeleteAccountResponse>, Status> {
        let delete = async |caller: Caller, target| self.accounts.delete(&caller, target).await;
        self.idempotency.delete(request, delete).await
    }

    async fn set_default_account(
        &self,
        request: Request<proto::SetDefaultAccountRequest>,
    ) -> Result<Response<proto::SetDefaultAccountResponse>, Status> {
        let set = async |caller: Caller, target| self.accounts.set_default(&caller, target).await;
        let replay = async |caller: Caller, _, record| self.replayed(&caller, &record).await;
        self.idempotency.write(request, set, replay).await
    }

    async fn set_fallback_accounts(
        &self,
        request: Request<proto::SetFallbackAccountsRequest>,
    ) -> Result<Response<proto::SetFallbackAccountsResponse>, Status> {
        let set = async |caller: Caller, list: FallbackList| {
            let FallbackList {
                channel,
                division,
                ids,
            } = list;
            let stored = self
                .accounts
                .set_fallbacks(&caller, channel, division, ids)
                .await?;
            Ok(Listed(stored))
        };
        // Lists are keyed by their scope: a replay reads the scope's again.
        let replay = async |caller: Caller, list: FallbackList, _| {
            let stored = self
                .accounts
                .fallbacks(&caller, list.channel, list.division)
                .await?;
            Ok(Listed(stored))
        };
        self.idempotency.write(request, set, replay).await
    }

    async fn get_fallback_accounts(
        &self,
        mut request: Request<proto::GetFallbackAccountsRequest>,
    ) -> Result<Response<proto::GetFallbackAccountsResponse>, Status> {
        let caller = caller_of(&mut request)?;
        let request = request.into_inner();
        let channel = required_channel(request.channel, "channel")?;
        let division = division_filter(request.division_id);
        let accounts = self.accounts.fallbacks(&caller, channel, division).await?;
        Ok(answer_for(
            caller.sees_setup_secrets(),
            proto::GetFallbackAccountsResponse {
                accounts: accounts.into_iter().map(account_to_proto).collect(),
            },
        ))
    }

    async fn get_account_credentials(
        &self,
        mut request: Request<proto::GetAccountCredentialsRequest>,
    ) -> Result<Response<proto::GetAccountCredentialsResponse>, Status> {
        let caller = caller_of(&mut request)?;
        let id = parse_id(&request.get_ref().id, "id")?;
        let account = self.accounts.credentials(&caller, id).await?;
        Ok(secret_answer(credentials_to_proto(account)))
    }

    async fn get_default_account(
        &self,
        mut request: Request<proto::GetDefaultAccountRequest>,
    ) -> Result<Response<proto::GetDefaultAccountResponse>, Status> {
        // Served on the wire by `DefaultAnswerService`, in front of this trait: the same
        // answer, decoded for whoever calls the trait itself.
        let (bytes, admin) = super::default_answer::answer(&self.accounts, &mut request).await?;
        let answer = <proto::GetDefaultAccountResponse as prost::Message>::decode(bytes)
            .map_err(|err| Error::Internal(format!("a kept default answer: {err}")))?;
        Ok(answer_for(admin, answer))
    }

    type WatchDefaultAccountsStream = DefaultsStream;

    async fn watch_default_accounts(
        &self,
        mut request: Request<proto::WatchDefaultAccountsRequest>,
    ) -> Result<Response<DefaultsStream>, Status> {
        let mut call = caller_of(&mut request)?;
        let permit = self.watch_permit(&mut call)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let channels = watched_channels(&request.channels, &mut violations);
        violations.into_result()?;
        let division = division_filter(request.division_id);
        let watch = self
            .accounts
            .watch_defaults(&call, channels, division)
            .await?;
        Ok(Response::new(default_watch::stream(
            self.accounts.clone(),
            call,
            watch,
            permit,
        )))
    }

    type WatchAccountEventsStream = EventsStream;

    async fn watch_account_events(
        &self,
        request: Request<proto::WatchAccountEventsRequest>,
    ) -> Result<Response<EventsStream>, Status> {
        account_events::open(self, request).await
    }

    async fn get_whats_app_health(
        &self,
        mut request: Request<proto::GetWhatsAppHealthRequest>,
    ) -> Result<Response<proto::GetWhatsAppHealthResponse>, Status> {
        let caller = caller_of(&mut request)?;
        let id = parse_id(&request.get_ref().id, "id")?;
        let health = self.accounts.whatsapp_health(&caller, id).await?;
        Ok(answer_for(
            caller.sees_setup_secrets(),
            health_to_proto(health),
        ))
    }

    async fn complete_whats_app_signup(
        &self,
        request: Request<proto::CompleteWhatsAppSignupRequest>,
    ) -> Result<Response<proto::CompleteWhatsAppSignupResponse>, Status> {
        let signup = async |caller: Caller, request: proto::CompleteWhatsAppSignupRequest| {
            let event = super::convert::meta::signup_event(request.event)?;
            let result = self
                .accounts
                .complete_whatsapp_signup(
                    &caller,
                    &request.code,
                    &request.waba_id,
                    &request.phone_number_id,
                    event,
                    request.division_id,
                )
                .await?;
            Ok(signup_to_proto(self.accounts.view(&caller, result.account)))
        };
        let replay = async |caller: Caller, _, record| {
            Ok(signup_to_proto(self.resumed(&caller, &record).await?))
        };
        self.idempotency.write(request, signup, replay).await
    }

    async fn connect_instagram(
        &self,
        request: Request<proto::ConnectInstagramRequest>,
    ) -> Result<Response<proto::ConnectInstagramResponse>, Status> {
        let connect = async |caller: Caller, request: proto::ConnectInstagramRequest| {
            let connected = self
                .accounts
                .connect_instagram(
                    &caller,
                    &request.code,
                    &request.redirect_uri,
                    request.division_id,
                )
                .await?;
            Ok(instagram_to_proto(
                self.accounts.view(&caller, connected.account),
            ))
        };
        let replay = async |caller: Caller, _, record| {
            Ok(instagram_to_proto(self.replayed(&caller, &record).await?))
        };
        self.idempotency.write(request, connect, replay).await
    }

    async fn connect_messenger(
        &self,
        request: Request<proto::ConnectMessengerRequest>,
    ) -> Result<Response<proto::ConnectMessengerResponse>, Status> {
        // It writes no record: its answer is kept (sealed), and a replay gives it back.
        let connect = async |caller: Caller, request: proto::ConnectMessengerRequest| {
            let connected = self
                .accounts
                .connect_messenger(&caller, &request.code, &request.redirect_uri)
                .await?;
            Ok(messenger_to_proto(connected))
        };
        let refresh = async |_, first| Ok(first);
        self.idempotency
            .write_resumable(request, connect, refresh)
            .await
    }

    async fn subscribe_messenger_pages(
        &self,
        request: Request<proto::SubscribeMessengerPagesRequest>,
    ) -> Result<Response<proto::SubscribeMessengerPagesResponse>, Status> {
        let subscribe = async |caller: Caller, request: proto::SubscribeMessengerPagesRequest| {
            let results = self
                .accounts
                .subscribe_messenger_pages(
                    &caller,
                    &request.user_token,
                    &request.page_ids,
                    request.division_id,
                )
                .await?;
            let view = |account| self.accounts.view(&caller, account);
            Ok(proto::SubscribeMessengerPagesResponse {
                results: results
                    .into_iter()
                    .map(|result| page_result_to_proto(result, view))
                    .collect(),
            })
        };
        // A replayed answer, each page's account read again as the caller may see it
        // now: one deleted (or moved away) since is reported as such.
        let refresh = async |caller: Caller, mut first: proto::SubscribeMessengerPagesResponse| {
            for result in &mut first.results {
                let Some(account) = result.account.take() else {
                    continue;
                };
                let id = parse_id(&account.id, "account.id")?;
                match self.accounts.get(&caller, id).await {
                    Ok(view) => result.account = Some(account_to_proto(view)),
                    Err(Error::NotFound { .. }) => {
                        *result = page_failed(
                            std::mem::take(&mut result.page_id),
                            Code::NotFound,
                            "the page's account was deleted since".to_owned(),
                        );
                    }
                    Err(err) => return Err(err),
                }
            }
            Ok(first)
        };
        self.idempotency
            .write_resumable(request, subscribe, refresh)
            .await
    }

    async fn set_messenger_persistent_menu(
        &self,
        request: Request<proto::SetMessengerPersistentMenuRequest>,
    ) -> Result<Response<proto::SetMessengerPersistentMenuResponse>, Status> {
        let set = async |caller: Caller, Update { id, patch: menu }: Update<MenuChange>| {
            let deleted = menu.is_none();
            self.accounts.set_persistent_menu(&caller, id, menu).await?;
            Ok(proto::SetMessengerPersistentMenuResponse {
                success: true,
                deleted,
            })
        };
        let refresh = async |_, first| Ok(first);
        self.idempotency
            .write_resumable(request, set, refresh)
            .await
    }
}
