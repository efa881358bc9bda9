"""Retrieval with the real embedded all-MiniLM-L6-v2: the passage that answers a question comes
first, among documents of every type, uploaded over HTTP."""

from __future__ import annotations

from fastapi import FastAPI

from quartermaster.services.context import Context
from tests.e2e.test_datasets_api import new_member
from tests.fakes import documents

DOCUMENTS = [
    ("boiler.txt", b"The heating boiler in the east wing is serviced every May by the caretaker."),
    ("parking.md", b"# Parking\n\nVisitors leave their cars on level two of the north garage."),
    ("menu.html", documents.html("Canteen", "Lunch is soup and bread; dessert is apple pie.")),
    ("staff.csv", documents.csv(["name", "role"], ["Ann Lee", "mayor"], ["Bo Chan", "clerk"])),
    ("tides.pdf", documents.pdf("High tide at Port Ellery harbour comes at six in the morning.")),
    ("leave.docx", documents.docx("Employees get twenty-five days of paid holiday a year.")),
]
QUESTIONS = {
    "When does the heater get its maintenance?": "boiler.txt",
    "Where should guests put their vehicles?": "parking.md",
    "What is for dessert in the cafeteria?": "menu.html",
    "Who is the mayor?": "staff.csv",
    "What time is high water at the port?": "tides.pdf",
    "How many vacation days do workers have?": "leave.docx",
}


async def test_the_local_model_finds_the_passage_that_answers(app: FastAPI, ctx: Context) -> None:
    ann = await new_member(app, ctx)
    dataset_id = await ann.dataset()
    uploaded = await ann.upload(dataset_id, *DOCUMENTS)
    assert uploaded.status_code == 201, uploaded.text
    assert all(r["tokens_charged"] > 0 for r in uploaded.json()["results"])
    url = f"/api/datasets/{dataset_id}/search"
    for question, expected in QUESTIONS.items():
        found = (await ann.http.get(url, params={"q": question, "k": 3})).json()["results"]
        assert found[0]["document"] == expected, (question, found)
        assert found[0]["score"] > found[1]["score"]
