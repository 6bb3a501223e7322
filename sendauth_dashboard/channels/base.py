"""What every channel is: an integration the organisation sets up, a way to reach a user,
and a provider to send through.

``problem()`` says why the organisation cannot send through the channel now (None when it
can); ``prepare()`` builds the outgoing message inside a database transaction (it may read
settings and decrypt credentials); ``send()`` delivers it over the network with no database
work, so no connection is held while a provider is slow. ``secrets()`` lists what must be
masked in any error text the provider sends back.
"""
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from ..extensions import db
from ..models import Transaction, User
from .http import SendResult
from .integration import Draft, Integration


class _ToMember:
    """A group request as one member's notification reads it: ``user`` is the member, and
    PagerDuty's dedup key theirs (each member's incident carries their own link)."""

    def __init__(self, transaction, member):
        self._transaction = transaction
        self.user = member
        self.dedup_key = f"{transaction.public_id}.{member.id}"

    def __getattr__(self, name):
        return getattr(self._transaction, name)


def addressed_to(transaction, member_id):
    """The transaction as a notification to a group's member (their user id) reads it; to its
    own user when ``member_id`` is None or theirs."""
    if member_id is None or member_id == transaction.user_id:
        return transaction
    return _ToMember(transaction, db.session.get(User, member_id))


class ChannelUnavailable(Exception):
    """The channel cannot send now (disabled or not configured); the message says why."""


@dataclass(frozen=True)
class Contact:
    """What a user types in so a channel can reach them (a phone number, a Slack member id):
    a column of User and a field of the messaging preferences form."""

    attribute: str
    label: str
    # Raw form text to the stored value (None when empty); ValueError says what is wrong.
    clean: Callable
    field_label: str
    description: str
    kind: str = "text"
    render_kw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Notice:
    """A message to a user about their own account (not a request): a subject and plain text
    with no link to act on."""

    subject: str
    text: str


@dataclass(frozen=True)
class Page:
    """What the channel's settings page says about a send and its answer."""

    # What a send is called, and who answers it: "incident", "PagerDuty".
    what: str
    provider: str
    # Said after an accepted test; may name the admin's own address: "{user.email}".
    accepted_advice: str
    refused_advice: str
    # The secret's word in the URL that removes it: /settings/<channel>/remove-<secret_word>.
    secret_word: str
    enable_label: str
    enable_description: str
    # The provider's name for what was sent, shown after an accepted test: "dedup key".
    external_id_label: str | None = None
    # Whether the test can be undone from the page (PagerDuty: resolve the test incident).
    test_resolvable: bool = False
    # The endpoint the provider posts back to, if any: the page shows its address.
    webhook_endpoint: str | None = None

    @property
    def test_noun(self):
        return f"test {self.what}"


@dataclass(frozen=True)
class Prepared:
    """A message built for the provider (``message``, what the channel's client sends) and the
    answer link inside it, if any: the link and its token are masked in whatever the
    provider says back, like the credentials are."""

    message: object
    link: str | None = None


class Client(Protocol):
    """A provider's client: made from the app's configuration on a channel's first send; it
    sends what the channel's ``build`` made, over the network, with no database work."""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Client": ...

    def send(self, message: Any) -> SendResult: ...


class Channel(Integration):
    """A channel: its integration (settings, status), how it reaches a user, how it sends.

    A subclass names its provider's client (built from the app's config; its ``send`` takes
    what ``build`` made) and says how a request and a test are built (``build``,
    ``build_test``) and which secrets they carry (``secrets``).
    """

    # "PagerDuty", "Email": as the channel is named in a menu or a list.
    label: ClassVar[str]
    # The messaging preferences' words for the channel.
    preference_description: ClassVar[str] = ""
    page: ClassVar[Page]
    client_class: ClassVar[type[Client]]
    # What reaches a person on this channel, when it is not their sign-in email.
    contact: ClassVar[Contact | None] = None

    def __init__(self, config: Mapping[str, Any]):
        self.config = config
        self._client = None

    @property
    def client(self) -> Client:
        """The provider's client, made from the app's configuration on the first send."""
        if self._client is None:
            self._client = self.client_class.from_config(self.config)
        return self._client

    def send(self, prepared: Prepared) -> SendResult:
        return self.client.send(prepared.message)

    def contact_problem(self, user: User) -> str | None:
        """Why the user's messaging preferences lack what this channel needs, or None."""
        if self.contact is None or getattr(user, self.contact.attribute):
            return None
        return f"no {self.contact.label} in their messaging preferences"

    def recipient(self, user: User) -> str:
        problem = self.contact_problem(user)
        if problem:
            raise ChannelUnavailable(f"{user.name} has {problem}")
        return getattr(user, self.contact.attribute)

    def test_recipient(self, sent_by: User) -> str:
        """The admin's own address: a test goes to whoever sends it."""
        if self.contact_problem(sent_by):
            raise ChannelUnavailable(
                f"The test goes to you: add your {self.contact.label} under Messaging "
                "preferences first")
        return getattr(sent_by, self.contact.attribute)

    def prepare(self, transaction: Transaction, link: str) -> Prepared:
        problem = self.problem()
        if problem:
            raise ChannelUnavailable(problem)
        return Prepared(self.build(self.settings_row(), transaction, link), link)

    def prepare_test(self, sent_by: User, draft: Draft) -> Prepared:
        """A test to the admin who asks, with the settings as their form has them (``draft``),
        saved or not, the channel on or off."""
        return Prepared(self.build_test(draft, sent_by))

    def prepare_notice(self, user: User, notice: Notice) -> Prepared:
        """A Notice to ``user`` at the address they have now, ready to send."""
        problem = self.problem()
        if problem:
            raise ChannelUnavailable(problem)
        return Prepared(self.build_notice(self.settings_row(), user, notice))

    def secret(self, settings: Any = None) -> str | None:
        """The secret the channel sends with: typed into a test's form (``settings`` a
        Draft), else the stored one, decrypted (see ``stored_secret``)."""
        if isinstance(settings, Draft) and settings.typed(self.secret_setting) is not None:
            return settings.typed(self.secret_setting)
        return self.stored_secret()

    # What the client sends, built from the settings row: a request's notification, a test
    # to the admin who asks, a notice to a user about their own account.
    def build(self, settings: Any, transaction: Transaction, link: str) -> Any:
        raise NotImplementedError

    def build_test(self, settings: Any, sent_by: User) -> Any:
        raise NotImplementedError

    def build_notice(self, settings: Any, user: User, notice: Notice) -> Any:
        raise NotImplementedError

    @staticmethod
    def secrets(message: Any) -> Iterable[str]:
        """The credentials ``message`` (what ``build`` made) carries."""
        raise NotImplementedError
