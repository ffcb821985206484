/** preValidation for a POST whose body fields are all optional: it may come without a body at all. */
export async function emptyBodyIsEmptyObject(request: { body: unknown }) {
  request.body ??= {};
}
