"""Shared widget setup for the panels: row tables and buttons."""

from __future__ import annotations

from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QPushButton, QTableView, QWidget


def row_table(parent: QWidget, model) -> QTableView:
    """A table over ``model`` that selects one whole row, sizes columns to their contents and hides row numbers."""
    table = QTableView(parent)
    table.setModel(model)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def push_button(parent: QWidget, text: str, tip: str, slot) -> QPushButton:
    """A push button with a tooltip whose click calls ``slot``."""
    button = QPushButton(text, parent)
    button.setToolTip(tip)
    button.clicked.connect(slot)
    return button
