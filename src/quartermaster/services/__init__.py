"""Services own transactions and authorization; each change writes its audit event in the same
transaction. Adapters (gateway, api, web, cli) call these and hold no business rules."""
