/**
 * Where the test brokers are and whether they answer STOMP (`brokerAvailable` from
 * @omnibus/contract): without OMNIBUS_REQUIRE_BROKERS=1 an unavailable broker skips its suites with
 * a printed reason; with it, the suite fails.
 */
import { brokerAvailable, brokerUrls } from '@omnibus/test-brokers';

export const RABBITMQ_STOMP_URL = brokerUrls().stomp;
export const ACTIVEMQ_STOMP_URL = brokerUrls().activemqStomp;

/** Prints why the suite is skipped (and fails under OMNIBUS_REQUIRE_BROKERS=1). */
export async function brokerOrSkip(name: string, url: string): Promise<boolean> {
  const broker = url.startsWith(ACTIVEMQ_STOMP_URL) ? 'activemq' : 'rabbitmq-stomp';
  const availability = await brokerAvailable(broker);
  if (availability.ok) return true;
  console.warn(`[stomp tests] skipping ${name}: ${availability.reason}`);
  return false;
}
