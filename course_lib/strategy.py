"""Should you fine-tune? A decision helper on green and red flags, and a cost model with its break-even. Lesson 01.

Two ways to change what a model does: put what it needs in the **context** (instructions, examples, retrieved
documents) on every request, or put it in the **weights** once, by fine-tuning. `recommend` weighs the flags of a
project and explains which flag pushed which way; `DecisionHelper` is the same function behind checkboxes. The
cost model compares a month of requests: prompting and RAG pay for long prompts on every request, fine-tuning
pays once for training and then sends short prompts to a cheaper model, plus what a fine-tuned model costs by the
month whatever the volume (a reserved serving GPU, retraining when the base model or the task changes).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

# ---------------------------------------------------------------------------------------------------------
# 1) The flags


@dataclass(frozen=True)
class Flag:
    """One property of a project that argues for fine-tuning (green) or against it (red)."""

    key: str  # what `recommend` takes
    label: str  # the checkbox text
    green: bool  # True: argues for putting it in the weights; False: for keeping it in the context
    why: str  # one sentence: why it pushes that way


FLAGS: tuple[Flag, ...] = (
    Flag("strict_output", "strict structured output (e.g. JSON that must follow a schema)", True,
         "constrained decoding (JSON mode, a grammar, structured outputs) guarantees the syntax without training; "
         "fine-tuning makes the content follow the rules: the allowed values, and which one fits"),
    Flag("taxonomy", "reasoning over a fixed taxonomy or house rules", True,
         "many labels and rules fill the prompt on every request, while training teaches them once"),
    Flag("domain_behaviour", "domain-native behaviour (tone, jargon, the way your team writes)", True,
         "style and habits are easier to show in training data than to describe in instructions"),
    Flag("multilingual", "the same task in several languages", True,
         "training on some languages transfers to the others, without examples in every language in the prompt"),
    Flag("distillation", "distilling a large model into a small one (cost, latency, self-hosting)", True,
         "a small model trained on a large model's answers does the one task at a fraction of the cost per request"),
    Flag("fast_changing_data", "the facts it must know change often (prices, stock, policies)", False,
         "weights are frozen at training time; facts that change belong in the prompt, retrieved fresh"),
    Flag("few_labels", "few clean labelled examples (under a few hundred)", False,
         "fine-tuning learns from examples; with few clean ones it learns their noise, so start from prompts"),
    Flag("fast_iteration", "the task definition still changes every week", False,
         "a prompt changes in a minute, a fine-tuned model needs new data and a new training run"),
)
FLAG_KEYS: tuple[str, ...] = tuple(flag.key for flag in FLAGS)

# What the decision can be.
FINE_TUNE = "fine-tune"
HYBRID = "fine-tune for the behaviour, retrieve the facts (fine-tuning + RAG)"
NOT_YET = "prompt now, fine-tune later"
CONTEXT = "keep it in the context (prompting, RAG)"


@dataclass(frozen=True)
class Recommendation:
    """What `recommend` decided, and each ticked flag with the way it pushed."""

    verdict: str  # one of FINE_TUNE, HYBRID, NOT_YET, CONTEXT
    reasons: tuple[str, ...]  # one line per ticked flag: "+ ..." towards the weights, "- ..." towards the context
    advice: str  # what to do next, in a sentence or two

    def text(self) -> str:
        """The recommendation as plain text: verdict, advice, then one line per flag."""
        return "\n".join([f"Recommendation: {self.verdict}", self.advice, *self.reasons])


def recommend(ticked: Iterable[str]) -> Recommendation:
    """The recommendation for a project with the `ticked` flags (keys of FLAGS), with the reason for each. Lesson 01.

    Rules, in order: no green flag -> keep it in the context; a green flag with few labels or a moving task ->
    prompt now, fine-tune later; a green flag with fast-changing facts -> fine-tune + RAG; green flags alone ->
    fine-tune.
    """
    ticked = set(ticked)
    unknown = sorted(ticked - set(FLAG_KEYS))
    if unknown:
        raise ValueError(f"unknown flag(s) {', '.join(unknown)}; the flags are: {', '.join(FLAG_KEYS)}")
    on = [flag for flag in FLAGS if flag.key in ticked]
    greens = [flag for flag in on if flag.green]
    reds = {flag.key for flag in on if not flag.green}
    reasons = tuple(f"{'+' if flag.green else '-'} {flag.label}: {flag.why}" for flag in on)
    if not greens:
        verdict, advice = CONTEXT, (
            "Nothing here needs new behaviour in the weights. Write a good prompt, add examples, and retrieve "
            "the knowledge the model lacks; measure it on a gold set before considering more.")
    elif reds & {"few_labels", "fast_iteration"}:
        verdict, advice = NOT_YET, (
            "Fine-tuning would pay off, but not yet: prompt (with retrieval) while you "
            + ("collect and curate labelled examples" if "few_labels" in reds else "settle the task definition")
            + ", log the requests, and fine-tune once the data and the task hold still.")
    elif "fast_changing_data" in reds:
        verdict, advice = HYBRID, (
            "Train the format, the rules and the tone into the weights; put the facts that change into the prompt "
            "at request time, retrieved from where they live. Fine-tune on prompts that carry such facts, so that "
            "the model learns to use them; new facts trained into the weights are learned slowly and raise "
            "hallucination.")
    else:
        verdict, advice = FINE_TUNE, (
            "Every flag points at the weights. Fine-tune, and keep a prompting baseline measured on the same gold "
            "set as the bar the fine-tuned model has to clear.")
    if not on:
        reasons = ("(no flag ticked)",)
    return Recommendation(verdict, reasons, advice)


class DecisionHelper(widgets.VBox):
    """Checkboxes for the flags, and below them `recommend`'s answer with its reasons, redrawn on every click.
    Lesson 01.

    The answer's plain text is also on `helper.text`, so the helper can be read (and tested) without a screen.
    """

    def __init__(self, ticked: Iterable[str] = ()):
        super().__init__()
        ticked = set(ticked)
        recommend(ticked)  # unknown keys fail here, with the list of valid ones
        layout = widgets.Layout(width="640px")
        self.checkboxes = {flag.key: widgets.Checkbox(value=flag.key in ticked, description=flag.label, indent=False,
                                                      layout=layout) for flag in FLAGS}
        self.report = widgets.HTML()
        self.text = ""
        for box in self.checkboxes.values():
            box.observe(self._redraw, names="value")
        self.children = [widgets.HTML("<b>Green flags</b> (argue for fine-tuning)"),
                         *[self.checkboxes[f.key] for f in FLAGS if f.green],
                         widgets.HTML("<b>Red flags</b> (argue against it)"),
                         *[self.checkboxes[f.key] for f in FLAGS if not f.green],
                         self.report]
        self._redraw()

    @property
    def ticked(self) -> list[str]:
        """Keys of the flags ticked now."""
        return [key for key, box in self.checkboxes.items() if box.value]

    def recommendation(self) -> Recommendation:
        """`recommend` on the boxes ticked now."""
        return recommend(self.ticked)

    def _redraw(self, change: Any = None) -> None:
        self.text = self.recommendation().text()
        self.report.value = f"<pre style='white-space: pre-wrap'>{html.escape(self.text)}</pre>"


# ---------------------------------------------------------------------------------------------------------
# 2) The cost model

# Example prices in US dollars, as seen in 2026. They are examples to show the shape of the trade-off:
# replace them with your provider's current prices and your own volumes.
EXAMPLE_PRICES = {
    "large_input_per_million": 1.25,  # a hosted large instruct model, per million input (prompt) tokens
    "large_output_per_million": 10.00,  # ... per million output (answer) tokens
    "small_input_per_million": 0.10,  # a small fine-tuned model, hosted or self-hosted, per million input tokens
    "small_output_per_million": 0.40,  # ... per million output tokens
    "gpu_hour": 3.00,  # renting one training GPU (H100 class) for an hour
    "serving_gpu_hour": 0.80,  # renting one inference GPU (L4 class) for an hour, to self-host a small model
}
HOURS_PER_MONTH = 730  # 365 x 24 / 12: a GPU reserved all month


@dataclass(frozen=True)
class CostOption:
    """One way to serve the task: a one-time cost, a cost per request, and fixed costs by the month. Lesson 01.

    The fixed monthly costs are paid whatever the volume, so at `volume` requests a month they add
    `per_month / volume` to each request; an option that has them needs `volume` to be priced.
    """

    name: str
    one_time: float  # dollars paid once (training, labelling); 0 for prompting
    per_request: float  # dollars per request
    serving_per_month: float = 0.0  # dollars a month whatever the volume, e.g. a serving GPU reserved all month
    retraining: float = 0.0  # dollars per retraining run (new base model, changed taxonomy), 0: never retrained
    retrain_every_months: float = 12.0  # months between retraining runs

    def __post_init__(self):
        if self.retraining and not self.retrain_every_months > 0:
            raise ValueError(f"{self.name}: retrain_every_months must be positive, got {self.retrain_every_months}")

    @property
    def per_month(self) -> float:
        """Fixed dollars a month: serving, plus each retraining run spread over the months until the next."""
        return self.serving_per_month + (self.retraining / self.retrain_every_months if self.retraining else 0.0)

    def per_request_at(self, volume: float | None = None) -> float:
        """Dollars per request at `volume` requests a month: the price per request plus a share of the fixed costs."""
        if not self.per_month:
            return self.per_request
        if volume is None or not volume > 0:
            raise ValueError(f"{self.name} costs ${self.per_month:,.2f} a month whatever the volume, so its cost "
                             "depends on the volume: pass volume=<requests per month>")
        return self.per_request + self.per_month / volume

    def cost(self, requests: float, *, volume: float | None = None) -> float:
        """Total cost after `requests` requests, at `volume` requests a month (needed only with monthly costs)."""
        return self.one_time + self.per_request_at(volume) * requests


def request_cost(*, input_tokens: float, output_tokens: float, input_per_million: float,
                 output_per_million: float) -> float:
    """Dollars for one request: prompt tokens x input price + answer tokens x output price
    (prices per million tokens)."""
    return (input_tokens * input_per_million + output_tokens * output_per_million) / 1e6


def training_cost(*, gpu_hours: float, gpu_hour: float, other: float = 0.0) -> float:
    """One-time cost of fine-tuning: GPU hours x price per hour, plus `other` one-time costs (labelling, evaluation)."""
    return gpu_hours * gpu_hour + other


def break_even(a: CostOption, b: CostOption, *, volume: float | None = None) -> float:
    """Requests after which the two options have cost the same, in closed form; inf when they never meet.

    one_time_a + per_request_a * n = one_time_b + per_request_b * n
    =>  n = (one_time_b - one_time_a) / (per_request_a - per_request_b)

    With fixed monthly costs, each per_request is the one at `volume` requests a month (`CostOption.per_request_at`).
    """
    pa, pb = a.per_request_at(volume), b.per_request_at(volume)
    if pa == pb:
        return 0.0 if a.one_time == b.one_time else math.inf
    n = (b.one_time - a.one_time) / (pa - pb)
    return n if n >= 0 else math.inf


def break_even_volume(a: CostOption, b: CostOption) -> float:
    """Requests a month above which the one with the higher fixed monthly costs costs less a month; inf if never.

    per_request_a * v + per_month_a = per_request_b * v + per_month_b
    =>  v = (per_month_b - per_month_a) / (per_request_a - per_request_b)
    One-time costs are left out: below this volume the option with the fixed costs never pays them back.
    """
    if a.per_request == b.per_request:
        return 0.0 if a.per_month == b.per_month else math.inf
    v = (b.per_month - a.per_month) / (a.per_request - b.per_request)
    return v if v >= 0 else math.inf


def plot_costs(options: Sequence[CostOption], *, reference: CostOption, max_requests: float | None = None,
               ax=None, title: str = "Cumulative cost", volume: float | None = None):
    """Cumulative cost of each option against the number of requests;
    where each crosses `reference` is marked and in the legend.

    `volume` (requests a month) is needed when an option has fixed monthly costs.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    crossings = {o.name: break_even(o, reference, volume=volume) for o in options if o is not reference}
    finite = [n for n in crossings.values() if math.isfinite(n) and n > 0]
    if max_requests is None:
        max_requests = 2 * max(finite) if finite else 1_000_000
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.6))
    xs = [max_requests * i / 200 for i in range(201)]
    for option in options:
        label = rf"{option.name}: \${option.per_request_at(volume) * 1000:.2f} per 1k requests"
        if option.per_month:
            label += rf" (\${option.per_month:,.0f} a month of it)"
        if option.one_time:
            label += rf" + \${option.one_time:,.0f} once"
        n = crossings.get(option.name, math.inf)
        if option is not reference and math.isfinite(n):
            label += f"; break-even at {n:,.0f}"
        ax.plot(xs, [option.cost(x, volume=volume) for x in xs], label=label,
                linewidth=2.5 if option is reference else 1.5)
    for n in crossings.values():
        if math.isfinite(n) and 0 < n <= max_requests:
            ax.axvline(n, color="gray", linestyle=":", linewidth=1)
            ax.plot([n], [reference.cost(n, volume=volume)], "ko", markersize=5)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
    ax.set(xlabel="requests", ylabel="cumulative cost (USD)", title=title, xlim=(0, max_requests), ylim=(0, None))
    ax.legend(fontsize=8, loc="upper left")
    return ax
