"""Transactions: send a request, watch it live, cancel it; and the link users answer through."""
from flask import Blueprint

bp = Blueprint("transactions", __name__, url_prefix="/transactions")
answer_bp = Blueprint("answer", __name__)

from . import answer, stream, views  # noqa: E402,F401  (views register themselves)
