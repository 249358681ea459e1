import KubinModel

extension Page {
    /// The page of `rows` a store fetched with `LIMIT limit + 1`: the first `limit` rows become items, and when the
    /// extra row came, the next page continues after the last item, at `cursor(lastRow, lastItem)`. Every listing of
    /// every store pages this one way.
    package init<Row>(
        rows: [Row], limit: Int, item: (Row) throws -> Item, cursor: (Row, Item) -> String
    ) rethrows {
        let kept = rows.prefix(limit)
        let items = try kept.map(item)
        guard rows.count > limit, let lastRow = kept.last, let lastItem = items.last else {
            self.init(items: items, nextCursor: nil)
            return
        }
        self.init(items: items, nextCursor: cursor(lastRow, lastItem))
    }
}
