/**
 * AMQP topic matching, as RabbitMQ does it: words are separated by '.', '*' stands for exactly one
 * word and '#' for zero or more words. The in-process driver routes with it.
 */
export function topicMatches(pattern: string, routingKey: string): boolean {
  return matchWords(pattern.split('.'), 0, routingKey.split('.'), 0, new Map());
}

function matchWords(
  pattern: readonly string[],
  p: number,
  words: readonly string[],
  w: number,
  memo: Map<number, boolean>,
): boolean {
  // '#' can branch at every word, so without memoisation a pattern like '#.#.#' is exponential.
  const key = p * (words.length + 1) + w;
  const known = memo.get(key);
  if (known !== undefined) return known;

  let result: boolean;
  const head = pattern[p];
  if (head === undefined) {
    result = w === words.length;
  } else if (head === '#') {
    result =
      matchWords(pattern, p + 1, words, w, memo) ||
      (w < words.length && matchWords(pattern, p, words, w + 1, memo));
  } else if (w === words.length) {
    result = false;
  } else {
    result = (head === '*' || head === words[w]) && matchWords(pattern, p + 1, words, w + 1, memo);
  }
  memo.set(key, result);
  return result;
}
