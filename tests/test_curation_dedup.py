"""Duplicates, label conflicts, leakage-free splits and contamination."""

from course_lib.curation.dedup import deduplicate, exact_duplicates, jaccard, near_duplicate_pairs, shingles
from course_lib.curation.records import Record
from course_lib.curation.split import contamination, split_without_leakage, stratified_sample

BASE = "My Aurora Phone arrived with a cracked case and the box was crushed. Order: ORD-123456."
REWORDED = "Hi, my Aurora Phone arrived with a cracked case and the box was crushed!! Order: ORD-123456."
OTHER = "I cannot log in to Streamline, the code never arrives on my phone."


def record(line, user, answer='{"category":"a"}'):
    return Record(line, {"messages": [{"role": "system", "content": "Same system prompt for all."},
                                      {"role": "user", "content": user}, {"role": "assistant", "content": answer}]})


def test_exact_duplicates_ignore_case_spacing_and_unicode_form():
    texts = [BASE, "  " + BASE.upper().replace(" ", "  "), OTHER, "ﬁne", "fine"]
    assert exact_duplicates(texts) == [[0, 1], [3, 4]]


def test_near_duplicates_respect_the_threshold():
    similarity = jaccard(shingles(BASE), shingles(REWORDED))
    assert 0.7 < similarity < 1.0
    assert [(i, j) for i, j, _ in near_duplicate_pairs([BASE, REWORDED, OTHER], threshold=0.7)] == [(0, 1)]
    assert near_duplicate_pairs([BASE, REWORDED, OTHER], threshold=similarity + 0.01) == []


def test_deduplicate_keeps_the_first_and_says_which_line_it_copies():
    records = [record(1, BASE), record(2, OTHER), record(3, BASE.lower()), record(4, REWORDED)]
    kept, removed = deduplicate(records)
    assert [r.line for r in kept] == [1, 2]
    assert [(r.line, why) for r, why in removed["exact_duplicate"]] == [(3, "duplicates line 1")]
    assert [(r.line, why) for r, why in removed["near_duplicate"]] == [(4, "duplicates line 1")]


def test_a_shared_system_prompt_does_not_make_rows_duplicates():
    kept, removed = deduplicate([record(1, BASE), record(2, OTHER)])
    assert len(kept) == 2 and not any(removed.values())


def test_label_conflicts_remove_the_whole_cluster_when_there_is_a_label():
    records = [record(1, BASE, '{"category":"shipping"}'), record(2, REWORDED, '{"category":"billing"}'),
               record(3, OTHER)]
    kept, removed = deduplicate(records, label_of=lambda r: r.answer)
    assert [r.line for r in kept] == [3]
    assert [r.line for r, _ in removed["label_conflict"]] == [1, 2]
    assert "a cluster of 2 rows led by line 1" in removed["label_conflict"][1][1]


def test_without_a_label_a_cluster_keeps_its_earliest_row():
    # similar prompts with different answers are no conflict when nothing says the answer is a label
    records = [record(1, BASE, "Sorry, we will send a new one."), record(2, REWORDED, "Please send us a photo first."),
               record(3, OTHER)]
    kept, removed = deduplicate(records)
    assert [r.line for r in kept] == [1, 3]
    assert [(r.line, why) for r, why in removed["near_duplicate"]] == [(2, "duplicates line 1")]
    assert removed["label_conflict"] == []


def test_the_reason_of_a_conflict_does_not_repeat_the_cluster():
    records = [record(i, BASE + "!" * (i % 3), f'{{"category":"c{i}"}}') for i in range(1, 301)]
    _, removed = deduplicate(records, label_of=lambda r: r.answer)
    assert len(removed["label_conflict"]) == 300
    assert max(len(why) for _, why in removed["label_conflict"]) < 100


TOOLS = ("You can call these tools. get_weather(city: str) returns the current weather of a city. "
         "search_flights(origin: str, destination: str, date: str) lists flights between two airports. "
         "convert_currency(amount: float, source: str, target: str) converts money between currencies.\n"
         "Answer with a JSON tool call when a tool helps, otherwise answer in plain words.\n")


def test_a_shared_preamble_does_not_make_rows_duplicates():
    queries = [f"What is the weather in {city} today?" for city in ("Paris", "Lima", "Oslo", "Cairo")] + \
              [f"Find me a flight from {a} to {b} next week." for a, b in (("Rome", "Kyiv"), ("Quito", "Accra"))] + \
              [f"How much is {n} dollars in {c}?" for n, c in (("12", "euros"), ("300", "yen"), ("45", "pounds"))]
    texts = [TOOLS + q for q in queries * 3]  # 27 rows, each query three times
    texts += [TOOLS + "What is the weather in Paris today, please?"]  # a real paraphrase of row 0
    pairs = {(i, j) for i, j, _ in near_duplicate_pairs(texts, threshold=0.7)}
    assert {(i, j) for i, j in pairs if texts[i] != texts[j]} == {(0, 27), (9, 27), (18, 27)}
    assert all(i % 9 == j % 9 for i, j in pairs if j < 27), "only copies of the same query pair up"
    undiscounted = near_duplicate_pairs(texts, threshold=0.7, discount=False)
    assert len(undiscounted) > 3 * len(pairs), "without the discount the preamble makes every row alike"


def test_a_math_problem_and_its_inverse_are_not_duplicates():
    forward = "Tom has 12 apples and gives 5 of them to Ann. How many apples does Tom have left?"
    inverse = ("Tom has 12 apples and gives some of them to Ann. He has 7 apples left. "
               "How many apples did he give to Ann?")
    paraphrase = "Tom has 12 apples and gives 5 of them to Ann. How many apples are left with Tom?"
    pairs = [(i, j) for i, j, _ in near_duplicate_pairs([forward, inverse, paraphrase], threshold=0.5)]
    assert pairs == [(0, 2)]


def test_split_never_puts_a_near_duplicate_cluster_on_both_sides():
    records = []
    for i in range(40):
        text = (f"Ticket number {i} about product {i % 7}: "
                f"the device {['crashes', 'is slow', 'overheats', 'wont pair'][i % 4]} since {i} days.")
        records += [record(len(records) + 1, text), record(len(records) + 2, text + " Thanks!")]
    train, test = split_without_leakage(records, test_fraction=0.25, seed=3)
    assert len(train) + len(test) == 80 and 16 <= len(test) <= 24
    assert contamination([r.text("user") for r in train], [r.text("user") for r in test]) == []
    assert {r.line for r in train}.isdisjoint({r.line for r in test})


def test_contamination_finds_test_rows_in_training_data():
    hits = contamination([OTHER, BASE], [REWORDED, "Something else entirely, about an invoice."])
    assert [(i, j) for i, j, _ in hits] == [(1, 0)]


def test_stratified_sample_balances_the_key():
    records = [record(i, f"text {i}", answer=["x", "y"][i % 10 == 0]) for i in range(1, 101)]
    chosen = stratified_sample(records, 20, key=lambda r: r.answer, seed=0)
    assert [r.answer for r in chosen].count("y") == 10 and len(chosen) == 20


def test_near_duplicate_search_keeps_signatures_not_shingle_sets():
    import random
    import tracemalloc

    from course_lib.curation.dedup import near_duplicate_links
    from course_lib.datafiles.tickets import make_ticket

    rng = random.Random(0)
    texts = [make_ticket(rng, f"m-{i}").message for i in range(5000)]
    tracemalloc.start()
    near_duplicate_links(texts, threshold=0.7)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak / len(texts) < 10_000, (f"{peak / len(texts):,.0f} bytes per row "
                                        "(a shingle set per row costs over 20,000)")
