"""The vector store's retriever: LangChain's, plus ``search_type="hybrid"`` (BM25 text + vector).

``store.as_retriever(search_type="hybrid", search_kwargs={"k": 4, "fusion": "rrf"})``; the
search kwargs are those of `SluiceVectorStore.hybrid_search`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.vectorstores import VectorStoreRetriever

if TYPE_CHECKING:
    from sluice.facade.vectorstore import SluiceVectorStore


class SluiceRetriever(VectorStoreRetriever):
    allowed_search_types: ClassVar[tuple[str, ...]] = (
        "similarity",
        "similarity_score_threshold",
        "mmr",
        "hybrid",
    )

    def _store(self) -> SluiceVectorStore:
        return cast("SluiceVectorStore", self.vectorstore)  # as_retriever of that store made this

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        if self.search_type == "hybrid":
            return self._store().hybrid_search(query, **(self.search_kwargs | kwargs))
        return super()._get_relevant_documents(query, run_manager=run_manager, **kwargs)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        if self.search_type == "hybrid":
            return await self._store().ahybrid_search(query, **(self.search_kwargs | kwargs))
        return await super()._aget_relevant_documents(query, run_manager=run_manager, **kwargs)
