// Texts in English and Chinese (Simplified). Both dictionaries have exactly the same keys
// (tests/i18n.test.mjs checks it, and that every error code of openapi.yaml has a message).
// `{name}` in a text is replaced by the parameter of that name.

/** @typedef {'en' | 'zh'} Lang */

export const LANGS = /** @type {const} */ (['en', 'zh']);

/** Error messages, one per `code` of the contract, plus the client's own. */
const errorsEn = {
  // Activation
  already_active: 'Your fund account is already active.',
  payment_password_too_weak:
    'This payment password is too weak: use 8 to 64 characters and avoid common passwords.',
  payment_password_same_as_login:
    'The payment password must be different from your login password.',
  no_pending_activation: 'No activation is waiting for an SMS code. Set your payment password first.',
  code_resend_too_soon: 'A code was sent less than a minute ago. You can ask again in {retry_after} s.',
  code_send_limit: 'You have asked for 5 codes in the last hour. Try again in {minutes} min.',
  activation_attempt_limit:
    'You have tried 10 payment passwords in the last hour. Try again in {minutes} min.',
  sms_unavailable: 'The SMS could not be sent just now. Please try again shortly.',
  code_incorrect: 'The code is wrong. Attempts left: {attempts_left}.',
  code_incorrect_last: 'The code is wrong and no attempts are left. Send a new code.',
  code_attempts_exhausted: 'Too many wrong attempts for this code. Send a new code.',
  code_expired: 'The code has expired (codes are valid for 30 minutes). Send a new code.',
  no_code_sent: 'No code has been sent yet. Press “Send code” first.',
  // Withdrawals
  account_not_active: 'Activate your fund account before withdrawing.',
  insufficient_funds: 'The amount is more than your available balance ({available} {currency}).',
  amount_below_fee: 'The amount must be more than the withdrawal fee ({fee} {currency}).',
  invalid_amount: 'Enter a positive amount with at most 2 decimals, e.g. 100 or 100.50.',
  unsupported_currency: 'Only USD and CNY are supported.',
  invalid_bank_account:
    'Check the bank account: holder name and bank name (1 to 140 characters), account number of 4 to 34 letters and digits.',
  payment_password_incorrect: 'The payment password is wrong. Attempts left: {attempts_left}.',
  payment_password_incorrect_last:
    'The payment password is wrong. Withdrawals are now locked for 3 hours.',
  payment_password_locked:
    'Withdrawals are locked after 5 wrong payment passwords, until {locked_until}.',
  idempotency_key_required: 'The request could not be identified. Please submit again.',
  invalid_idempotency_key: 'The request could not be identified. Please submit again.',
  idempotency_key_reused: 'This submission was already used for a different withdrawal. Please submit again.',
  withdrawal_not_found: 'This withdrawal was not found.',
  withdrawal_already_settled: 'This withdrawal has already been settled.',
  // Account, sign-in, generic
  member_not_found: 'No fund account was found for this member.',
  invalid_credentials: 'The member ID or the login password is wrong.',
  unauthorized: 'Your session has ended. Please sign in again.',
  forbidden: 'You are not allowed to do this.',
  invalid_request: 'The request was not accepted. Check the form and try again.',
  payload_too_large: 'The request is too large.',
  unsupported_media_type: 'The request must be sent as JSON.',
  route_not_found: 'This function is not available.',
  method_not_allowed: 'This function is not available.',
  service_unavailable: 'The service is busy. Please try again shortly.',
  internal_error: 'Something went wrong on our side. Please try again later.',
  // Internal routes (the marketplace's services; listed so every code has a text)
  invalid_phone: 'The phone number must be in international form, e.g. +8613800000000.',
  invalid_password_hash: 'The login password record is not valid.',
  collection_conflict: 'This collection was already recorded with other values.',
  collection_not_found: 'The collection was not found.',
  refund_conflict: 'This refund was already recorded with other values.',
  refund_exceeds_collection: 'The refunds would exceed the collection ({refundable} can still be refunded).',
  // The client's own
  network_error: 'The server could not be reached. Check your connection and try again.',
  unknown_error: 'Something went wrong (HTTP {status}). Please try again.',
};

/** @type {Record<keyof typeof errorsEn, string>} */
const errorsZh = {
  already_active: '您的资金账户已激活。',
  payment_password_too_weak: '支付密码过于简单：请使用 8 至 64 个字符，并避免常见密码。',
  payment_password_same_as_login: '支付密码不能与登录密码相同。',
  no_pending_activation: '当前没有等待短信验证的激活，请先设置支付密码。',
  code_resend_too_soon: '验证码刚刚发送过，请 {retry_after} 秒后再试。',
  code_send_limit: '您在过去 1 小时内已获取 5 次验证码，请 {minutes} 分钟后再试。',
  activation_attempt_limit: '您在过去 1 小时内已尝试设置 10 次支付密码，请 {minutes} 分钟后再试。',
  sms_unavailable: '短信暂时无法发送，请稍后重试。',
  code_incorrect: '验证码错误，还可尝试 {attempts_left} 次。',
  code_incorrect_last: '验证码错误，已无剩余尝试次数，请重新获取验证码。',
  code_attempts_exhausted: '该验证码错误次数过多，请重新获取验证码。',
  code_expired: '验证码已过期（有效期 30 分钟），请重新获取。',
  no_code_sent: '尚未发送验证码，请先点击“发送验证码”。',
  account_not_active: '请先激活资金账户再提现。',
  insufficient_funds: '提现金额超过可用余额（{available} {currency}）。',
  amount_below_fee: '提现金额必须大于手续费（{fee} {currency}）。',
  invalid_amount: '请输入正数金额，最多 2 位小数，例如 100 或 100.50。',
  unsupported_currency: '仅支持 USD 和 CNY。',
  invalid_bank_account: '请检查银行账户：户名和银行名称为 1 至 140 个字符，账号为 4 至 34 位字母或数字。',
  payment_password_incorrect: '支付密码错误，还可尝试 {attempts_left} 次。',
  payment_password_incorrect_last: '支付密码错误，提现功能已锁定 3 小时。',
  payment_password_locked: '支付密码连续错误 5 次，提现已锁定至 {locked_until}。',
  idempotency_key_required: '无法识别该请求，请重新提交。',
  invalid_idempotency_key: '无法识别该请求，请重新提交。',
  idempotency_key_reused: '该提交已用于另一笔提现，请重新提交。',
  withdrawal_not_found: '未找到该笔提现。',
  withdrawal_already_settled: '该笔提现已有结果。',
  member_not_found: '未找到该会员的资金账户。',
  invalid_credentials: '会员 ID 或登录密码错误。',
  unauthorized: '登录已失效，请重新登录。',
  forbidden: '您无权执行此操作。',
  invalid_request: '请求未被接受，请检查填写内容后重试。',
  payload_too_large: '请求内容过大。',
  unsupported_media_type: '请求必须以 JSON 格式发送。',
  route_not_found: '该功能暂不可用。',
  method_not_allowed: '该功能暂不可用。',
  service_unavailable: '服务繁忙，请稍后重试。',
  internal_error: '系统出现问题，请稍后重试。',
  invalid_phone: '手机号须为国际格式，例如 +8613800000000。',
  invalid_password_hash: '登录密码记录无效。',
  collection_conflict: '该笔收款已以不同信息记录。',
  collection_not_found: '未找到该笔收款。',
  refund_conflict: '该笔退款已以不同信息记录。',
  refund_exceeds_collection: '退款将超过收款金额（仍可退 {refundable}）。',
  network_error: '无法连接服务器，请检查网络后重试。',
  unknown_error: '出现错误（HTTP {status}），请重试。',
};

const en = {
  'app.name': 'Seller Fund Account',
  'app.skip': 'Skip to main content',
  'app.loading': 'Loading…',
  'app.lang.switch': '中文',
  'app.lang.switchLabel': '中文 — switch the page to Chinese',
  'app.nav.label': 'Main',
  'app.nav.account': 'Account',
  'app.nav.withdraw': 'Withdraw',
  'app.nav.withdrawals': 'Withdrawals',
  'app.signout': 'Sign out',
  'app.requestId': 'Request ID: {id}',
  'app.retry': 'Try again',
  'app.back': 'Back to account',
  'app.footer': 'Amounts are shown with 2 decimals. Times are in your local time zone.',
  'app.fieldRequired': 'This field is required.',

  'signin.title': 'Sign in',
  'signin.intro': 'Sign in with your marketplace seller account to open your fund account.',
  'signin.devNote': 'Local development: sign in with a member created through POST /dev/members.',
  'signin.memberId': 'Member ID',
  'signin.password': 'Login password',
  'signin.submit': 'Sign in',
  'signin.idp': 'Sign in with your marketplace account',
  'signin.idpFailed': 'Sign-in with the marketplace did not complete. Please try again.',
  'signin.signedOut': 'You have signed out.',

  'account.title': 'Fund account',
  'account.member': 'Member ID',
  'account.status': 'Status',
  'account.phone': 'Bound phone',
  'account.noPhone': 'No phone bound',
  'status.inactive': 'Not activated',
  'status.pending_verification': 'Waiting for SMS verification',
  'status.active': 'Active',
  'account.inactive.text': 'Activate your fund account to withdraw your balances. It takes a minute.',
  'account.activate': 'Activate now',
  'account.pending.text': 'Your payment password is set. Enter the SMS code sent to your phone to finish activation.',
  'account.continue': 'Continue activation',
  'account.changePassword': 'Change payment password',
  'account.withdraw': 'Withdraw',
  'account.refresh': 'Refresh',
  'balances.title': 'Balances',
  'balances.currency': 'Currency',
  'balances.available': 'Available (withdrawable)',
  'balances.pending': 'Pending',
  'balances.in_transit': 'In transit',
  'balances.note': 'Pending: collected for orders, not yet settled. In transit: being paid out to your bank.',
  'tx.title': 'Recent transactions',
  'tx.filter': 'Currency',
  'tx.all': 'All currencies',
  'tx.date': 'Date',
  'tx.type': 'Type',
  'tx.currency': 'Currency',
  'tx.bucket': 'Balance',
  'tx.amount': 'Amount',
  'tx.reference': 'Reference',
  'tx.empty': 'No transactions yet.',
  'tx.type.collection': 'Order payment collected',
  'tx.type.collection_settled': 'Order payment settled',
  'tx.type.refund': 'Refund',
  'tx.type.withdrawal': 'Withdrawal',
  'tx.type.withdrawal_paid': 'Withdrawal paid out',
  'tx.type.withdrawal_returned': 'Withdrawal returned',
  'bucket.available': 'Available',
  'bucket.pending': 'Pending',
  'bucket.in_transit': 'In transit',
  'paging.label': 'Pages',
  'paging.prev': 'Previous page',
  'paging.next': 'Next page',
  'paging.page': 'Page {n}',

  'steps.label': 'Activation steps',
  'steps.password': 'Payment password',
  'steps.code': 'SMS code',
  'steps.done': 'Done',
  'pw.title': 'Create a payment password',
  'pw.intro': 'The payment password protects your withdrawals. You will enter it each time you withdraw.',
  'pw.rulesTitle': 'Your payment password must be:',
  'pw.rule.length': '8 to 64 characters long',
  'pw.rule.common': 'not a common password (such as 12345678 or password1)',
  'pw.rule.login': 'different from your login password — do not reuse it',
  'pw.password': 'Payment password',
  'pw.confirm': 'Confirm payment password',
  'pw.show': 'Show passwords',
  'pw.submit': 'Confirm',
  'pw.err.length': 'Use 8 to 64 characters.',
  'pw.err.mismatch': 'The two passwords do not match.',
  'pw.alreadyActive': 'Your account is already active; there is nothing to set up.',

  'code.title': 'Verify your phone',
  'code.intro': 'We send a 6-digit code by SMS to {phone}. The code is valid for 30 minutes.',
  'code.send': 'Send code',
  'code.resend': 'Resend code',
  'code.resendIn': 'Resend code ({time})',
  'code.sent': 'Code sent to {phone} at {at}. It is valid for 30 minutes, until {until}.',
  'code.expiredLocal': 'The code sent at {at} has expired. Send a new code.',
  'code.field': 'SMS code',
  'code.hint': '6 digits',
  'code.submit': 'Confirm',
  'code.err.format': 'Enter the 6 digits of the code.',
  'code.changePassword': 'Change the payment password instead',

  'done.title': 'Your fund account is active',
  'done.text': 'Your payment password is now in force. Use it to withdraw your balances.',
  'done.account': 'Go to my account',
  'done.withdraw': 'Withdraw now',

  'wd.title': 'Withdraw',
  'wd.notActive': 'Activate your fund account before withdrawing.',
  'wd.currency': 'Currency',
  'wd.currencyOption': '{currency} — available {available}',
  'wd.amount': 'Amount',
  'wd.amountHint': 'Available: {available} {currency}. The fee is taken from this amount.',
  'wd.all': 'Withdraw all',
  'wd.allLabel': 'Withdraw all: fill in the whole available amount',
  'wd.previewTitle': 'Before you confirm',
  'wd.previewAmount': 'Amount',
  'wd.previewFee': 'Fee',
  'wd.previewNet': 'You receive',
  'wd.previewEmpty': 'Enter an amount to see the fee and the amount you receive.',
  'wd.previewBelowFee': 'The amount must be more than the fee of {fee} {currency}.',
  'wd.feeNote': 'Default fees: USD 15.00, CNY 0.00 per withdrawal. The final fee is confirmed by the server when the withdrawal is made.',
  'wd.bank': 'Bank account',
  'wd.holder': 'Account holder name',
  'wd.number': 'Account number',
  'wd.numberHint': '4 to 34 letters and digits, without spaces',
  'wd.bankName': 'Bank name',
  'wd.password': 'Payment password',
  'wd.submit': 'Confirm withdrawal',
  'wd.submitting': 'Submitting…',
  'wd.err.amount': 'Enter a positive amount with at most 2 decimals.',
  'wd.err.number': 'Use 4 to 34 letters and digits.',
  'wd.resultTitle': 'Withdrawal submitted',
  'wd.resultText': 'Your withdrawal is being paid out to your bank account.',
  'wd.replayed': 'Your earlier attempt had already gone through; it was not made twice.',
  'wd.id': 'Withdrawal ID',
  'wd.status': 'Status',
  'wd.bankAccount': 'Bank account',
  'wd.seeAll': 'See all withdrawals',
  'wd.another': 'Make another withdrawal',
  'wd.networkRetry': 'If you press Confirm again, the same request is resent, so the withdrawal cannot happen twice.',

  'wds.title': 'Withdrawals',
  'wds.new': 'New withdrawal',
  'wds.empty': 'No withdrawals yet.',
  'wds.date': 'Date',
  'wds.amount': 'Amount',
  'wds.fee': 'Fee',
  'wds.net': 'Net amount',
  'wds.bank': 'Bank account',
  'wds.status': 'Status',
  'wds.reason': 'Reason: {reason}',
  'wstatus.processing': 'Processing',
  'wstatus.paid': 'Paid',
  'wstatus.returned': 'Returned',
};

/** @type {Record<keyof typeof en, string>} */
const zh = {
  'app.name': '卖家资金账户',
  'app.skip': '跳到主要内容',
  'app.loading': '加载中…',
  'app.lang.switch': 'English',
  'app.lang.switchLabel': 'English — 将页面切换为英文',
  'app.nav.label': '主导航',
  'app.nav.account': '账户',
  'app.nav.withdraw': '提现',
  'app.nav.withdrawals': '提现记录',
  'app.signout': '退出登录',
  'app.requestId': '请求编号：{id}',
  'app.retry': '重试',
  'app.back': '返回账户',
  'app.footer': '金额保留 2 位小数。时间为您所在时区的本地时间。',
  'app.fieldRequired': '此项为必填项。',

  'signin.title': '登录',
  'signin.intro': '请使用您的平台卖家账户登录，以打开资金账户。',
  'signin.devNote': '本地开发：请使用通过 POST /dev/members 创建的会员登录。',
  'signin.memberId': '会员 ID',
  'signin.password': '登录密码',
  'signin.submit': '登录',
  'signin.idp': '使用平台账户登录',
  'signin.idpFailed': '平台登录未完成，请重试。',
  'signin.signedOut': '您已退出登录。',

  'account.title': '资金账户',
  'account.member': '会员 ID',
  'account.status': '状态',
  'account.phone': '绑定手机',
  'account.noPhone': '未绑定手机',
  'status.inactive': '未激活',
  'status.pending_verification': '待短信验证',
  'status.active': '已激活',
  'account.inactive.text': '激活资金账户后即可提现余额，只需一分钟。',
  'account.activate': '立即激活',
  'account.pending.text': '支付密码已设置。请输入发送到您手机的短信验证码以完成激活。',
  'account.continue': '继续激活',
  'account.changePassword': '修改支付密码',
  'account.withdraw': '提现',
  'account.refresh': '刷新',
  'balances.title': '余额',
  'balances.currency': '币种',
  'balances.available': '可用（可提现）',
  'balances.pending': '待结算',
  'balances.in_transit': '提现中',
  'balances.note': '待结算：订单已收款、尚未结算的金额。提现中：正在付往您银行账户的金额。',
  'tx.title': '最近交易',
  'tx.filter': '币种',
  'tx.all': '全部币种',
  'tx.date': '时间',
  'tx.type': '类型',
  'tx.currency': '币种',
  'tx.bucket': '余额类别',
  'tx.amount': '金额',
  'tx.reference': '关联单号',
  'tx.empty': '暂无交易。',
  'tx.type.collection': '订单收款',
  'tx.type.collection_settled': '订单结算',
  'tx.type.refund': '退款',
  'tx.type.withdrawal': '提现',
  'tx.type.withdrawal_paid': '提现已到账',
  'tx.type.withdrawal_returned': '提现退回',
  'bucket.available': '可用',
  'bucket.pending': '待结算',
  'bucket.in_transit': '提现中',
  'paging.label': '分页',
  'paging.prev': '上一页',
  'paging.next': '下一页',
  'paging.page': '第 {n} 页',

  'steps.label': '激活步骤',
  'steps.password': '支付密码',
  'steps.code': '短信验证码',
  'steps.done': '完成',
  'pw.title': '创建支付密码',
  'pw.intro': '支付密码用于保护您的提现，每次提现时都需要输入。',
  'pw.rulesTitle': '支付密码须满足：',
  'pw.rule.length': '长度为 8 至 64 个字符',
  'pw.rule.common': '不是常见密码（例如 12345678 或 password1）',
  'pw.rule.login': '与登录密码不同——请勿重复使用登录密码',
  'pw.password': '支付密码',
  'pw.confirm': '确认支付密码',
  'pw.show': '显示密码',
  'pw.submit': '确认',
  'pw.err.length': '请使用 8 至 64 个字符。',
  'pw.err.mismatch': '两次输入的密码不一致。',
  'pw.alreadyActive': '您的账户已激活，无需再设置。',

  'code.title': '验证手机',
  'code.intro': '我们将通过短信向 {phone} 发送 6 位验证码，验证码 30 分钟内有效。',
  'code.send': '发送验证码',
  'code.resend': '重新发送',
  'code.resendIn': '重新发送（{time}）',
  'code.sent': '验证码已于 {at} 发送至 {phone}，30 分钟内有效，有效期至 {until}。',
  'code.expiredLocal': '{at} 发送的验证码已过期，请重新获取。',
  'code.field': '短信验证码',
  'code.hint': '6 位数字',
  'code.submit': '确认',
  'code.err.format': '请输入 6 位数字验证码。',
  'code.changePassword': '改为重新设置支付密码',

  'done.title': '资金账户已激活',
  'done.text': '您的支付密码已生效，可用于提现余额。',
  'done.account': '前往我的账户',
  'done.withdraw': '立即提现',

  'wd.title': '提现',
  'wd.notActive': '请先激活资金账户再提现。',
  'wd.currency': '币种',
  'wd.currencyOption': '{currency} — 可用 {available}',
  'wd.amount': '提现金额',
  'wd.amountHint': '可用余额：{available} {currency}。手续费从该金额中扣除。',
  'wd.all': '全部提现',
  'wd.allLabel': '全部提现：填入全部可用金额',
  'wd.previewTitle': '确认前请核对',
  'wd.previewAmount': '提现金额',
  'wd.previewFee': '手续费',
  'wd.previewNet': '实际到账',
  'wd.previewEmpty': '输入金额后即可查看手续费和实际到账金额。',
  'wd.previewBelowFee': '提现金额必须大于手续费 {fee} {currency}。',
  'wd.feeNote': '默认手续费：每笔 USD 15.00，CNY 0.00。最终手续费以提现时服务器确认的为准。',
  'wd.bank': '银行账户',
  'wd.holder': '开户名',
  'wd.number': '银行账号',
  'wd.numberHint': '4 至 34 位字母或数字，不含空格',
  'wd.bankName': '开户银行',
  'wd.password': '支付密码',
  'wd.submit': '确认提现',
  'wd.submitting': '提交中…',
  'wd.err.amount': '请输入正数金额，最多 2 位小数。',
  'wd.err.number': '请输入 4 至 34 位字母或数字。',
  'wd.resultTitle': '提现已提交',
  'wd.resultText': '您的提现正在付往您的银行账户。',
  'wd.replayed': '您之前的提交已成功，本次未重复提现。',
  'wd.id': '提现编号',
  'wd.status': '状态',
  'wd.bankAccount': '银行账户',
  'wd.seeAll': '查看全部提现记录',
  'wd.another': '再提一笔',
  'wd.networkRetry': '再次点击“确认提现”将重发同一请求，不会重复提现。',

  'wds.title': '提现记录',
  'wds.new': '新建提现',
  'wds.empty': '暂无提现记录。',
  'wds.date': '时间',
  'wds.amount': '提现金额',
  'wds.fee': '手续费',
  'wds.net': '到账金额',
  'wds.bank': '银行账户',
  'wds.status': '状态',
  'wds.reason': '原因：{reason}',
  'wstatus.processing': '处理中',
  'wstatus.paid': '已到账',
  'wstatus.returned': '已退回',
};

export const messages = {
  en: { ...en, ...prefix(errorsEn) },
  zh: { ...zh, ...prefix(errorsZh) },
};

/** The error codes the client has a message for. */
export const errorCodes = Object.keys(errorsEn);

/** @param {Record<string, string>} errors */
function prefix(errors) {
  return Object.fromEntries(Object.entries(errors).map(([k, v]) => [`error.${k}`, v]));
}

/** @type {Lang} */
let current = 'en';

export function getLang() {
  return current;
}

/** @param {Lang} lang */
export function setLang(lang) {
  current = LANGS.includes(lang) ? lang : 'en';
}

/** The BCP 47 tag for `<html lang>` and Intl. */
export function locale(lang = current) {
  return lang === 'zh' ? 'zh-CN' : 'en';
}

/**
 * The first choice: a saved choice, else the browser's languages (any zh-* is Chinese).
 * @param {readonly string[]} browserLangs
 * @param {string | null} saved
 * @returns {Lang}
 */
export function pickLang(browserLangs, saved) {
  if (saved === 'en' || saved === 'zh') return saved;
  for (const tag of browserLangs) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (base === 'zh') return 'zh';
    if (base === 'en') return 'en';
  }
  return 'en';
}

/**
 * The text for a key in the current language, with `{name}` parameters filled in.
 * @param {string} key
 * @param {Record<string, string | number>} [params]
 */
export function t(key, params = {}) {
  const text = messages[current][key] ?? messages.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) =>
    Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole,
  );
}

/**
 * Date and time for people, in the browser's time zone.
 * @param {string | number | Date} value
 * @param {'datetime' | 'time'} [style]
 */
export function formatTime(value, style = 'datetime') {
  const date = value instanceof Date ? value : new Date(value);
  const options =
    style === 'time'
      ? { hour: '2-digit', minute: '2-digit' }
      : { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' };
  return new Intl.DateTimeFormat(locale(), /** @type {Intl.DateTimeFormatOptions} */ (options)).format(date);
}
