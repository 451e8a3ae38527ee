"""The factory wing of the course's own tiny chat model: its world, pretraining corpus, tokenizer, build and card.

No lesson needs to open it: lessons load the model from `data/models/tiny-chat` and measure it with
`course_lib.probe`, whose questions (`data/probe/heldout.jsonl`) this wing's corpus wrote.

    python -m course_lib.tinymodel build    # pretrain into data/models/tiny-chat
    python -m course_lib.tinymodel probe    # held-out ability scores, as JSON
"""
