"""The seeded generator of labelled support tickets, and the gold and dev splits it writes.

The task itself (taxonomy, priority rules, schema, parsing) is `course_lib.tickets`; this module writes customer
messages in four languages with typos, deadlines, hazards and order numbers, and labels them by those rules.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from course_lib.noise import CLOSINGS, GREETINGS, NAMES
from course_lib.tickets import (
    BASE_PRIORITY,
    CATEGORIES,
    CATEGORY_PRODUCTS,
    HARDWARE,
    LANGUAGES,
    PRODUCTS,
    SAFETY_CATEGORIES,
    SENTIMENTS,
    decide_priority,
    format_answer,
    to_messages,
)

# Message templates. {p} is the product as the customer names it; English has several phrasings per category.
PROBLEMS_EN: dict[str, tuple[str, ...]] = {
    "billing/refund_request": (
        "I would like a refund for my {p}.",
        "Can I get my money back for the {p}? I returned it last week.",
        "please refund the {p}, it is not what I expected",
        "I want to return the {p} and get a full refund.",
    ),
    "billing/double_charge": (
        "I was charged twice for the {p}.",
        "My card shows two identical payments for the {p}.",
        "you billed me two times for one {p}",
        "There is a duplicate charge on my statement for the {p}.",
    ),
    "billing/invoice_request": (
        "Could you send me an invoice for the {p}?",
        "I need a copy of the receipt for my {p} for my expenses.",
        "where can i download the invoice for the {p}",
        "Please email me a VAT invoice for the {p}.",
    ),
    "billing/cancel_subscription": (
        "I want to cancel my {p} subscription.",
        "Please stop my {p} from renewing next month.",
        "how do i cancel the {p}, i do not use it anymore",
        "Cancel my {p} at the end of this billing period, please.",
    ),
    "shipping/late_delivery": (
        "My {p} has not arrived yet and it is a week late.",
        "The tracking for my {p} has not moved in days.",
        "still waiting for the {p}, it was supposed to be here on monday",
        "Where is my {p}? The delivery date has passed.",
    ),
    "shipping/damaged_item": (
        "My {p} arrived with a cracked case.",
        "The {p} came broken, the box was crushed.",
        "the {p} was damaged when i opened the package",
        "My new {p} has a dent and a scratched screen out of the box.",
    ),
    "shipping/wrong_item": (
        "I ordered the {p} but received something else.",
        "The package had the wrong item in it instead of my {p}.",
        "you sent me the wrong colour of the {p}",
        "I got a different model, not the {p} I paid for.",
    ),
    "shipping/change_address": (
        "I need to change the delivery address for my {p}.",
        "Can you ship the {p} to my office instead of my home?",
        "i moved, please send the {p} to my new address",
        "Please update the shipping address on my {p} order.",
    ),
    "technical/app_crash": (
        "The {p} app crashes every time I open it.",
        "My {p} keeps freezing and restarting on its own.",
        "the {p} crashes as soon as i start it",
        "Since the last update the {p} closes itself after a few seconds.",
    ),
    "technical/login_problem": (
        "I cannot log in to {p}.",
        "The {p} says my password is wrong, but I just reset it.",
        "cant sign in to the {p}, the code never arrives",
        "I am locked out of {p} after the update.",
    ),
    "technical/slow_performance": (
        "The {p} has become very slow.",
        "Everything on my {p} takes ages to load.",
        "the {p} is really laggy since the update",
        "My {p} is slow to respond to anything I tap.",
    ),
    "technical/connectivity": (
        "My {p} will not connect to Bluetooth.",
        "The {p} keeps dropping the Wi-Fi connection.",
        "the {p} wont pair with anything",
        "My {p} loses its connection every few minutes.",
    ),
    "account/update_details": (
        "I need to update the email address on my {p} account.",
        "Please change the phone number linked to my {p}.",
        "how do i change my name on the {p} account",
        "Can you update the billing details for my {p}?",
    ),
    "account/delete_account": (
        "Please delete my {p} account and all my data.",
        "I want to close my {p} account for good.",
        "remove my {p} account please, i am done with it",
        "How do I permanently delete my data from {p}?",
    ),
    "account/security_concern": (
        "Someone else logged in to my {p} account.",
        "I got an alert that my {p} password was changed, and it was not me.",
        "there are logins to my {p} from a country i have never been to",
        "I think my {p} account was hacked.",
    ),
}
# One phrasing per category in each other language the generator writes.
PROBLEMS_OTHER: dict[str, dict[str, str]] = {
    "es": {
        "billing/refund_request": "Quiero un reembolso por mi {p}.",
        "billing/double_charge": "Me han cobrado dos veces el {p}.",
        "billing/invoice_request": "¿Me pueden enviar la factura del {p}?",
        "billing/cancel_subscription": "Quiero cancelar mi suscripción a {p}.",
        "shipping/late_delivery": "Mi {p} todavía no ha llegado y ya va una semana de retraso.",
        "shipping/damaged_item": "Mi {p} llegó roto.",
        "shipping/wrong_item": "Pedí el {p} pero recibí otro producto.",
        "shipping/change_address": "Necesito cambiar la dirección de entrega de mi {p}.",
        "technical/app_crash": "El {p} se cierra cada vez que lo abro.",
        "technical/login_problem": "No puedo iniciar sesión en {p}.",
        "technical/slow_performance": "Mi {p} va muy lento.",
        "technical/connectivity": "Mi {p} no se conecta por Bluetooth.",
        "account/update_details": "Necesito cambiar el correo de mi cuenta de {p}.",
        "account/delete_account": "Por favor, borren mi cuenta de {p} y todos mis datos.",
        "account/security_concern": "Alguien ha entrado en mi cuenta de {p}.",
    },
    "fr": {
        "billing/refund_request": "Je voudrais être remboursé pour mon {p}.",
        "billing/double_charge": "J'ai été débité deux fois pour le {p}.",
        "billing/invoice_request": "Pouvez-vous m'envoyer la facture du {p} ?",
        "billing/cancel_subscription": "Je veux résilier mon abonnement {p}.",
        "shipping/late_delivery": "Mon {p} n'est toujours pas arrivé, il a une semaine de retard.",
        "shipping/damaged_item": "Mon {p} est arrivé cassé.",
        "shipping/wrong_item": "J'ai commandé le {p} mais j'ai reçu un autre article.",
        "shipping/change_address": "Je dois changer l'adresse de livraison de mon {p}.",
        "technical/app_crash": "Le {p} plante à chaque ouverture.",
        "technical/login_problem": "Je n'arrive pas à me connecter à {p}.",
        "technical/slow_performance": "Mon {p} est devenu très lent.",
        "technical/connectivity": "Mon {p} ne se connecte pas en Bluetooth.",
        "account/update_details": "Je dois modifier l'adresse e-mail de mon compte {p}.",
        "account/delete_account": "Merci de supprimer mon compte {p} et toutes mes données.",
        "account/security_concern": "Quelqu'un s'est connecté à mon compte {p}.",
    },
    "de": {
        "billing/refund_request": "Ich möchte eine Rückerstattung für mein {p}.",
        "billing/double_charge": "Mir wurde das {p} zweimal berechnet.",
        "billing/invoice_request": "Können Sie mir die Rechnung für das {p} schicken?",
        "billing/cancel_subscription": "Ich möchte mein {p}-Abo kündigen.",
        "shipping/late_delivery": "Mein {p} ist immer noch nicht angekommen, schon eine Woche zu spät.",
        "shipping/damaged_item": "Mein {p} kam beschädigt an.",
        "shipping/wrong_item": "Ich habe das {p} bestellt, aber einen anderen Artikel bekommen.",
        "shipping/change_address": "Ich muss die Lieferadresse für mein {p} ändern.",
        "technical/app_crash": "Das {p} stürzt bei jedem Start ab.",
        "technical/login_problem": "Ich kann mich nicht bei {p} anmelden.",
        "technical/slow_performance": "Mein {p} ist sehr langsam geworden.",
        "technical/connectivity": "Mein {p} verbindet sich nicht mit Bluetooth.",
        "account/update_details": "Ich muss die E-Mail-Adresse meines {p}-Kontos ändern.",
        "account/delete_account": "Bitte löschen Sie mein {p}-Konto und alle meine Daten.",
        "account/security_concern": "Jemand hat sich in mein {p}-Konto eingeloggt.",
    },
}
# Extra detail sentences: they add length without changing the label.
DETAILS_EN: dict[str, tuple[str, ...]] = {
    "billing": ("I paid with my credit card.", "The payment went through on the 3rd.", "I checked my bank app twice."),
    "shipping": ("The courier left a note but nothing else.", "I ordered it as a gift.",
                 "I paid for express shipping."),
    "technical": ("I already restarted it twice.", "I am on the latest version.", "It worked fine until yesterday."),
    "account": ("I have had this account for years.", "I use the same email for everything.", "I am the only user."),
}
# Phrases that carry the sentiment label; neutral messages use none of them.
TONE: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "negative": (
            "This is really frustrating.",
            "I am very disappointed.",
            "Honestly, this is unacceptable.",
            "I am fed up with this.",
            "Terrible experience so far.",
        ),
        "positive": (
            "I really love your products, by the way.",
            "Thanks so much for your help!",
            "You have always been great, so I am sure you can sort this out.",
            "Happy customer otherwise, keep it up!",
        ),
    },
    "es": {"negative": ("Estoy muy molesto.", "Esto es inaceptable."),
           "positive": ("¡Muchas gracias por su ayuda!", "Me encantan sus productos.")},
    "fr": {"negative": ("Je suis très déçu.", "C'est inacceptable."),
           "positive": ("Merci beaucoup pour votre aide !", "J'adore vos produits.")},
    "de": {"negative": ("Ich bin sehr verärgert.", "Das ist inakzeptabel."),
           "positive": ("Vielen Dank für Ihre Hilfe!", "Ich liebe Ihre Produkte.")},
}
DEADLINE: dict[str, tuple[str, ...]] = {
    "en": ("I need this sorted by tomorrow.", "I need it before my trip this weekend.",
           "Please fix this today, I have a deadline."),
    "es": ("Lo necesito para mañana.",),
    "fr": ("J'en ai besoin pour demain.",),
    "de": ("Ich brauche das bis morgen.",),
}
NO_RUSH: dict[str, tuple[str, ...]] = {
    "en": ("No rush at all.", "No rush, whenever you have time.", "It is not urgent, no rush."),
    "es": ("Sin prisa.",),
    "fr": ("Rien ne presse.",),
    "de": ("Keine Eile.",),
}
# (sentence shown to the customer, words the summary uses)
HAZARDS: dict[str, tuple[tuple[str, str], ...]] = {
    "en": (
        ("It gets so hot I can barely touch it.", "is overheating"),
        ("I saw smoke coming out of it.", "is giving off smoke"),
        ("The battery looks swollen.", "has a swollen battery"),
        ("There is a burning smell when it charges.", "smells of burning"),
    ),
    "es": (("Se calienta muchísimo y huele a quemado.", "is overheating"),),
    "fr": (("Il chauffe énormément et sent le brûlé.", "is overheating"),),
    "de": (("Es wird extrem heiß und riecht verbrannt.", "is overheating"),),
}
ORDER_PHRASES: dict[str, tuple[str, ...]] = {
    "en": ("My order number is {o}.", "Order: {o}", "(order {o})", "The order is {o}.", "order no. {o}"),
    "es": ("Número de pedido: {o}.",),
    "fr": ("Numéro de commande : {o}.",),
    "de": ("Bestellnummer: {o}.",),
}
SUMMARIES: dict[str, str] = {
    "billing/refund_request": "Customer requests a refund for the {product}.",
    "billing/double_charge": "Customer was charged twice for the {product}.",
    "billing/invoice_request": "Customer asks for an invoice for the {product}.",
    "billing/cancel_subscription": "Customer wants to cancel the {product} subscription.",
    "shipping/late_delivery": "The {product} delivery is late.",
    "shipping/damaged_item": "The {product} arrived damaged.",
    "shipping/wrong_item": "Customer received the wrong item instead of the {product}.",
    "shipping/change_address": "Customer wants to change the delivery address for the {product}.",
    "technical/app_crash": "The {product} keeps crashing.",
    "technical/login_problem": "Customer cannot log in to the {product}.",
    "technical/slow_performance": "The {product} has become slow.",
    "technical/connectivity": "The {product} has connection problems.",
    "account/update_details": "Customer wants to update account details for the {product}.",
    "account/delete_account": "Customer wants the {product} account deleted.",
    "account/security_concern": "Customer reports unauthorised access to the {product} account.",
}
OTHER_LANGUAGE_SHARE = 0.12  # fraction of messages written in Spanish, French or German


@dataclass(frozen=True)
class Ticket:
    """One generated customer message with its correct label and the facts that decided it."""

    id: str  # e.g. "gold-0007"
    language: str  # "en", "es", "fr" or "de"
    message: str  # what the customer wrote
    label: dict  # the correct answer, keys in KEY_ORDER
    hazard: bool  # the message reports a safety hazard
    deadline: bool  # the message states a deadline
    no_rush: bool  # the message says there is no rush


def _typo(word: str, rng: random.Random) -> str:
    """One realistic typo: swap two neighbouring letters, drop one, or double one."""
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def _add_typos(text: str, protected: set[str], rng: random.Random, count: int) -> str:
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if w.isalpha() and len(w) >= 5 and w not in protected]
    for i in rng.sample(candidates, min(count, len(candidates))):
        words[i] = _typo(words[i], rng)
    return " ".join(words)


def make_ticket(rng: random.Random, ticket_id: str, *, language: str | None = None) -> Ticket:
    """Write one labelled customer message, every choice drawn from `rng`."""
    # 1) the label's facts
    category = rng.choice(CATEGORIES)
    product = rng.choice(CATEGORY_PRODUCTS[category])
    sentiment = rng.choice(SENTIMENTS)
    if language is None:
        language = "en" if rng.random() >= OTHER_LANGUAGE_SHARE else rng.choice(LANGUAGES[1:])
    group = category.split("/")[0]
    order_share = 0.7 if group in ("billing", "shipping") else 0.15
    order_id = f"ORD-{rng.randrange(10**6):06d}" if rng.random() < order_share else None
    hazard = category in SAFETY_CATEGORIES and product in HARDWARE and rng.random() < 0.25
    urgency = rng.random()
    deadline = not hazard and urgency < 0.2
    no_rush = not hazard and BASE_PRIORITY[category] != "urgent" and 0.2 <= urgency < 0.35
    # 2) the message, piece by piece
    alias = rng.choice(PRODUCTS[product]) if language == "en" else product
    if language == "en":
        problem = rng.choice(PROBLEMS_EN[category])
    else:
        problem = PROBLEMS_OTHER[language][category]
    parts: list[str] = []
    if rng.random() < 0.6:
        parts.append(rng.choice(GREETINGS[language]))
    tone = TONE[language].get(sentiment, ())
    tone_first = tone and rng.random() < 0.4
    if tone_first:
        parts.append(rng.choice(tone))
    parts.append(problem.format(p=alias))
    if order_id:
        parts.append(rng.choice(ORDER_PHRASES[language]).format(o=order_id))
    if language == "en" and rng.random() < 0.5:
        parts.append(rng.choice(DETAILS_EN[group]))
    hazard_words = ""
    if hazard:
        sentence, hazard_words = rng.choice(HAZARDS[language])
        parts.append(sentence)
    if deadline:
        parts.append(rng.choice(DEADLINE[language]))
    if no_rush:
        parts.append(rng.choice(NO_RUSH[language]))
    if tone and not tone_first:
        parts.append(rng.choice(tone))
    if rng.random() < 0.4:
        parts.append(rng.choice(CLOSINGS[language]) + " " + rng.choice(NAMES))
    message = " ".join(parts)
    # 3) surface noise, English only: typos and all-lowercase writing
    if language == "en":
        protected = set(alias.split()) | {order_id or ""}
        if rng.random() < 0.3:
            message = _add_typos(message, protected, rng, count=rng.randint(1, 3))
        if rng.random() < 0.15:
            message = message.lower()
            if order_id:
                message = message.replace(order_id.lower(), order_id)
    summary = SUMMARIES[category].format(product=product)
    if hazard:
        summary = summary[:-1] + f", and it {hazard_words}."
    label = {
        "category": category,
        "priority": decide_priority(category, hazard=hazard, deadline=deadline, no_rush=no_rush),
        "product": product,
        "sentiment": sentiment,
        "order_id": order_id,
        "summary": summary,
    }
    return Ticket(ticket_id, language, message, label, hazard, deadline, no_rush)


def generate_tickets(n: int, *, seed: int, prefix: str,
                     exclude: frozenset[str] | set[str] = frozenset()) -> list[Ticket]:
    """`n` tickets with distinct messages (none of them in `exclude`), the same for the same seed."""
    rng = random.Random(seed)
    tickets: list[Ticket] = []
    seen = set(exclude)
    while len(tickets) < n:
        ticket = make_ticket(rng, f"{prefix}-{len(tickets):04d}")
        if ticket.message in seen:
            continue
        seen.add(ticket.message)
        tickets.append(ticket)
    return tickets


def to_row(ticket: Ticket) -> dict:
    """One JSONL row in TRL's conversational format, plus the ticket's id and language."""
    return {"id": ticket.id, "language": ticket.language,
            "messages": to_messages(ticket.message, format_answer(ticket.label))}

GOLD_SIZE, GOLD_SEED = 400, 3101  # clean test set, never used for training
DEV_SIZE, DEV_SEED = 200, 3102  # development set, for choosing prompts and hyper-parameters


def build_splits() -> dict[str, list[Ticket]]:
    """The tickets of every shipped file; dev never repeats a gold message."""
    gold = generate_tickets(GOLD_SIZE, seed=GOLD_SEED, prefix="gold")
    dev = generate_tickets(DEV_SIZE, seed=DEV_SEED, prefix="dev", exclude={t.message for t in gold})
    return {"gold_test": gold, "dev": dev}

